"""What every benchmark shares: a fresh PostgreSQL database, gunicorn and Celery workers as subprocesses on
127.0.0.1, statistics over interleaved rounds, peak RSS and CPU of the server processes, and bench/RESULTS.md.

Environment (all optional):
    BENCH_POSTGRES    postgres://postgres@127.0.0.1:5432   the server the fresh databases are created on
    BENCH_DB_PREFIX   hangar_perf                          database names: PREFIX_<script>
    BENCH_REDIS       redis://127.0.0.1:6379               broker: db BENCH_BROKER_DB (13), cache: BENCH_CACHE_DB (14)
    BENCH_LABEL       run                                  how RESULTS.md labels this run ("before", "after")
    BENCH_WEB_WORKERS 2,  BENCH_WORKER_CONCURRENCY 2
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "RESULTS.md"
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "hangar_perf")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
BROKER_DB = int(os.environ.get("BENCH_BROKER_DB", "13"))
CACHE_DB = int(os.environ.get("BENCH_CACHE_DB", "14"))
LABEL = os.environ.get("BENCH_LABEL", "run")
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "2"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- statistics --------------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95: fraction 0.95)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(round(fraction * len(ordered) + 0.5) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


# --- the machine -------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _redis_version() -> str:
    try:
        import redis

        return redis.Redis.from_url(f"{REDIS}/{CACHE_DB}").info("server")["redis_version"]
    except Exception as error:  # the description is informative only
        return f"unknown ({error.__class__.__name__})"


def _postgres_version() -> str:
    import psycopg

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        return connection.execute("SHOW server_version").fetchone()[0]


def machine() -> str:
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), {_ram_gib():.1f} GiB RAM, Python {platform.python_version()}, "
        f"PostgreSQL {_postgres_version()}, Redis {_redis_version()}, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )


# --- database, environment -----------------------------------------------------------------------------------------


def fresh_database(script: str) -> str:
    """Drops and creates PREFIX_<script>; returns its URL."""
    import psycopg

    name = f"{DB_PREFIX}_{script}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES}/{name}"


def bench_environment(script: str, **extra: str) -> dict[str, str]:
    """The environment of this run's processes (this one, gunicorn, Celery): a fresh database, our Redis dbs."""
    var_dir = tempfile.mkdtemp(prefix=f"hangar-bench-{script}-")
    (Path(var_dir) / "staticfiles").mkdir()  # whitenoise warns about a missing STATIC_ROOT
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.support.settings",
        "DATABASE_URL": fresh_database(script),
        "CELERY_BROKER_URL": f"{REDIS}/{BROKER_DB}",
        "CACHE_URL": f"{REDIS}/{CACHE_DB}",
        "HANGAR_VAR_DIR": var_dir,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 50,
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "EMAIL_URL": "locmem://",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    return environment


def setup_django(environment: dict[str, str]) -> None:
    """Points this process at the run's database and brokers, migrates, and empties our Redis databases."""
    os.environ.update(environment)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis

    for db in (BROKER_DB, CACHE_DB):
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes -----------------------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    queue += [int(child) for child in (task / "children").read_text().split()]
    return found


def _status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return 0.0


@dataclass
class Service:
    """A started process tree (gunicorn's arbiter and workers, Celery's main process and pool)."""

    name: str
    process: subprocess.Popen
    log: Path
    peak_rss_kib: dict[int, int] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return _descendants(self.process.pid)

    def sample(self) -> None:
        for pid in self.pids():
            self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), _status_kib(pid, "VmHWM:"))
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), _cpu_seconds(pid))

    def cpu_seconds(self) -> float:
        """CPU time of every process of the tree so far (exited ones keep their last sample)."""
        self.sample()
        return sum(self.cpu.values())

    def peak_rss_mib(self) -> float:
        """The largest peak RSS of any one process of the tree."""
        self.sample()
        return max(self.peak_rss_kib.values(), default=0) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.sample()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LocalPostgres:
    """The processes of the PostgreSQL server on this machine (found by name; none if it runs elsewhere), sampled
    like a Service for their CPU: every database's, so it counts the benchmark's only where nothing else uses the
    server. A backend that exits keeps its last sample."""

    def __init__(self):
        self.cpu: dict[int, float] = {}

    def sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip() == "postgres":
                        pid = int(entry.name)
                        self.cpu[pid] = max(self.cpu.get(pid, 0.0), _cpu_seconds(pid))

    def cpu_seconds(self) -> float:
        self.sample()
        return sum(self.cpu.values())


class Stack:
    """gunicorn and/or Celery workers for one benchmark, sampled every 0.2 s for RSS and CPU (and the local
    PostgreSQL server's CPU), stopped at exit."""

    def __init__(self, environment: dict[str, str]):
        self.environment = environment
        self.services: list[Service] = []
        self.postgres = LocalPostgres()
        self.log_dir = Path(environment["HANGAR_VAR_DIR"])
        self.port = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_loop, daemon=True)
        self._sampler.start()

    def _sample_loop(self) -> None:
        while not self._stop.wait(0.2):
            for service in [*self.services, self.postgres]:
                service.sample()

    def _start(self, name: str, command: list[str], extra_env: dict | None = None) -> Service:
        log = self.log_dir / f"{name}.log"
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**self.environment, **(extra_env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def web(self, workers: int = WEB_WORKERS) -> Service:
        self.port = free_port()
        service = self._start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.asgi:application",
                "-c",
                "portal/gunicorn.conf.py",
                "--access-logfile",
                "/dev/null",
            ],
            {"GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(workers)},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status in (200, 503):
                    return service
            if service.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start; see {service.log}:\n{service.log.read_text()[-3000:]}")

    def worker(self, concurrency: int = WORKER_CONCURRENCY, queues: str | None = None) -> Service:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--include",
            "bench.support.tasks",
        ]
        command += ["--queues", queues or "celery,control"]
        service = self._start("worker", command)
        wait_for_worker(self.environment)
        return service

    def close(self) -> None:
        self._stop.set()
        for service in reversed(self.services):
            service.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for_worker(environment: dict[str, str], timeout: float = 90) -> None:
    """Sends a no-op task and waits until a worker has run it."""
    from django.core.cache import cache

    from bench.support.tasks import DONE_KEY, noop

    cache.delete(DONE_KEY)
    noop.delay()
    deadline = time.monotonic() + timeout
    while not cache.get(DONE_KEY):
        if time.monotonic() > deadline:
            raise RuntimeError("No Celery worker ran the warm-up task.")
        time.sleep(0.1)


# --- HTTP ------------------------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection to the bench server (http.client: no dependency, little overhead)."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port = port
        self.headers = headers or {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        """(status, body, seconds)."""
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            started = time.perf_counter()
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - started
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                return response.status, data, elapsed
            except (http.client.HTTPException, ConnectionError):
                # A recycled gunicorn worker closed our idle keep-alive connection: reconnect once.
                self.connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


# --- results -------------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(title: str, rows: list[tuple], header: tuple, notes: list[str] | None = None) -> None:
    """Prints a table and appends it, with the machine's description and the run's label, to bench/RESULTS.md."""
    lines = [
        f"### {title} — {LABEL}",
        "",
        f"Machine: {machine()}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    if notes:
        lines += ["", *notes]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    with RESULTS.open("a") as results:
        results.write("\n" + text)


def cleanup(environment: dict[str, str]) -> None:
    shutil.rmtree(environment["HANGAR_VAR_DIR"], ignore_errors=True)


def fail_if_errors(label: str, statuses: list[int], ok: tuple[int, ...] = (200,)) -> None:
    bad = [status for status in statuses if status not in ok]
    if bad:
        raise RuntimeError(f"{label}: {len(bad)} requests answered {sorted(set(bad))}")


def quiet_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
