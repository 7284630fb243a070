"""A private PostgreSQL cluster and a private Redis server for the fault suite, on free ports of 127.0.0.1.

Both belong to the suite alone, so it can stop, restart and kill them; the machine's own servers (5432, 6379) are
never touched. PostgreSQL refuses to run as root, so as root its binaries run as the `postgres` user (runuser).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.e2e.stack import free_port


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH), else the ones on PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the fault suite (empty when everything is there)."""
    missing = []
    folder = _postgres_bin()
    if folder is None or not (folder / "initdb").exists():
        missing.append("PostgreSQL server binaries (initdb, pg_ctl)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _uid_of("postgres") is None):
        missing.append("a `postgres` user and runuser (PostgreSQL does not run as root)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


def _uid_of(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


class PostgresCluster:
    """initdb into a temporary folder, then pg_ctl on a free port; trust authentication on 127.0.0.1 only."""

    def __init__(self):
        self.bin = _postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="hangar-fault-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            os.chown(self.folder, _uid_of("postgres"), -1)

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}\n{self.tail_log()}")

    def init(self) -> PostgresCluster:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip
        return self

    def start(self) -> None:
        # Durability is not under test (a restart is a clean stop), so the cluster skips fsync for speed.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session at once (what a restart does to the clients); `immediate` is a crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def execute(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as connection:
            connection.execute(statement)

    def tail_log(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """redis-server on a free port, no persistence: a restart loses every key, as a crash of a cache would."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.folder = folder
        self.log = folder / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no", "--dir", str(self.folder)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"
