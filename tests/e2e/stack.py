"""A whole Hangar stack in subprocesses — web (gunicorn), a Celery worker and beat — as `make run` starts it.

Used by tests that must prove work is done by a separate worker process, not inline. The stack gets its own
var/ folder and its own database: a temporary SQLite file, or a fresh PostgreSQL database when the suite runs on
PostgreSQL; the broker is the embedded one, or a private Redis database when the suite runs on Redis. The fault
suite (tests/fault) gives it the URLs of servers it runs itself, and stops, kills and pauses its processes.
"""

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.datastructures import CaseInsensitiveMapping

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# When the suite runs on Redis, each stack gets a Redis database of its own, emptied when the stack starts: test
# process N (pytest-xdist's gwN) uses databases 2 + 2N and 3 + 2N, in turn, as a process may run two stacks at once
# (the browser suite's, kept for the whole run, and a module's own). The suite itself uses 0 and 1; the benchmarks
# (bench/) use 13 and 14 by default.
STACK_REDIS_DBS = range(2, 8)
_stacks_started = itertools.count()


def stack_redis_db() -> int:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    return STACK_REDIS_DBS[(2 * worker + next(_stacks_started) % 2) % len(STACK_REDIS_DBS)]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status_code: int
    body: bytes
    # Looked up whatever the case: header names are case-insensitive, and uvicorn sends them in lower case.
    headers: CaseInsensitiveMapping = field(default_factory=lambda: CaseInsensitiveMapping({}))
    seconds: float = 0.0  # how long the answer took

    def json(self):
        return json.loads(self.body)


class Stack:
    def __init__(self, var_dir: Path, *, urls: dict[str, str] | None = None, env: dict[str, str] | None = None):
        """`urls` may name the servers to use (DATABASE_URL, CELERY_BROKER_URL, CACHE_URL), used as they are;
        `env` adds settings for every process."""
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self._pg_database = ""
        self.env = {**self._environment(urls or {}), **(env or {})}

    def _environment(self, urls: dict[str, str]) -> dict:
        from django.conf import settings

        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_ALLOW_ASYNC", "PYTEST"))}
        env.update(
            HANGAR_VAR_DIR=str(self.var_dir),
            DEBUG="1",
            PYTHONUNBUFFERED="1",
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS="2",
        )
        if urls:
            return {**env, "CACHE_URL": f"file://{self.var_dir / 'cache'}", **urls}
        if settings.DATABASE_IS_SQLITE:
            env["DATABASE_URL"] = f"sqlite:///{self.var_dir / 'stack.sqlite3'}"
        else:
            base = settings.DATABASES["default"]
            self._pg_database = f"hangar_stack_{uuid.uuid4().hex[:8]}"
            self._pg_admin(f'CREATE DATABASE "{self._pg_database}"')
            env["DATABASE_URL"] = (
                f"postgres://{base['USER'] or 'postgres'}@{base['HOST'] or '127.0.0.1'}:{base['PORT'] or 5432}"
                f"/{self._pg_database}"
            )
        broker = env.get("CELERY_BROKER_URL", "")
        if broker.startswith("redis"):
            env["CELERY_BROKER_URL"] = broker.rsplit("/", 1)[0] + f"/{stack_redis_db()}"
            self._redis_flush(env["CELERY_BROKER_URL"])
        else:
            env.pop("CELERY_BROKER_URL", None)
        env["CACHE_URL"] = f"file://{self.var_dir / 'cache'}"
        return env

    @staticmethod
    def _pg_admin(statement: str) -> None:
        import psycopg
        from django.conf import settings

        base = settings.DATABASES["default"]
        with psycopg.connect(
            host=base["HOST"] or "127.0.0.1",
            port=base["PORT"] or 5432,
            user=base["USER"] or "postgres",
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(statement)

    @staticmethod
    def _redis_flush(url: str) -> None:
        import redis

        redis.Redis.from_url(url).flushdb()

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, command: list[str]) -> None:
        """Starts a process in a session of its own; a restarted one appends to the same log."""
        log = self.var_dir / f"{name}.log"
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> "Stack":
        self.manage("migrate", "--noinput")
        self.manage("seed_demo")
        self.start_web()
        self.start_worker()
        self.start_beat()
        self.wait_for(lambda: self.get("/healthz").status_code == 200, what="the web server")
        return self

    def start_web(self, *options: str) -> None:
        """gunicorn with portal/gunicorn.conf.py; `options` are command-line settings, which override the file's."""
        self._spawn(
            "web", [str(BIN / "gunicorn"), "portal.asgi:application", "-c", "portal/gunicorn.conf.py", *options]
        )

    def start_beat(self) -> None:
        schedule = str(self.var_dir / "celerybeat-schedule")
        self._spawn("beat", [str(BIN / "celery"), "-A", "portal", "beat", "--loglevel", "INFO", "--schedule", schedule])

    def start_worker(self) -> None:
        self._spawn(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with suppress(ProcessLookupError):  # it had already exited (its log says why)
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def pause(self, name: str) -> None:
        """Freezes a process and its children (SIGSTOP): it holds its connections but does nothing."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def request(self, method: str, path: str, body=None, *, headers: dict | None = None, timeout=10.0) -> Response:
        """One HTTP request; `body` is sent as JSON unless it is bytes. A connection failure is status 599."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, content, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, content, answer_headers = error.code, error.read(), error.headers
        except OSError:
            status, content, answer_headers = 599, b"", {}
        return Response(status, content, CaseInsensitiveMapping(dict(answer_headers)), time.monotonic() - started)

    def wait_for(self, predicate, *, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.logs[name].read_text()[-3000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}; logs:\n" + self.tail_logs())

    def tail_logs(self, characters: int = 2000) -> str:
        return "\n".join(
            f"--- {name}{self._exit_status(name)}\n{log.read_text()[-characters:]}"
            for name, log in self.logs.items()
            if log.exists()
        )

    def _exit_status(self, name: str) -> str:
        process = self.processes.get(name)
        if process is None:
            return " (stopped)"
        return f" (exited with {process.returncode})" if process.poll() is not None else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()
        if self._pg_database:
            self._pg_admin(f'DROP DATABASE IF EXISTS "{self._pg_database}" WITH (FORCE)')
