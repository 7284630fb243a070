"""A real Celery worker process killed with SIGKILL in the middle of a build: the reconciler finishes the job.

Set-up, worker and reconciler all run in child processes with the embedded filesystem broker in a private
temporary HANGAR_VAR_DIR, like `make run` does; the test only reads the database to see what happened. It runs
against a private SQLite file, and again against the live PostgreSQL test database when the suite runs there.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

SETUP = """
from decimal import Decimal
from django.utils import timezone
from django.contrib.auth import get_user_model
from compute.models import Flavor, Host, Image
from compute.services import instance_launch
from tenants.services import tenant_create

user = get_user_model().objects.create_user(
    email="crash@example.com", password="not-used-here-1", email_verified_at=timezone.now()
)
tenant = tenant_create(name="Crash test", owner=user)
Host.objects.create(name="sim-crash", driver="simulated", vcpus=8, ram_mib=16384, disk_gib=200, boot_seconds=8)
flavor = Flavor.objects.create(name="s1", vcpus=1, ram_mib=1024, disk_gib=10, monthly_price=Decimal("5.00"))
image = Image.objects.create(name="Debian 12", os="Debian", version="12", disk_path="/images/debian-12.raw")
instance = instance_launch(tenant=tenant, user=user, name="survivor", flavor=flavor, image=image, keys=[])
print(instance.pk)
"""

RECONCILE = "from compute.reconciler import reconcile; print(reconcile().summary())"


def _environment(tmp_path, database_url: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "HANGAR_VAR_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "filesystem://",
        "CACHE_URL": f"file://{tmp_path / 'cache'}",
        "COMPUTE_TASK_GRACE_SECONDS": "2",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
    }


class SQLiteReader:
    """Reads the child processes' SQLite file (read-only) without going through Django."""

    def __init__(self, path: Path):
        self.path = path

    def one(self, sql: str, instance_id: str):
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=20) as db:
            return db.execute(sql.replace("%s", "?"), (instance_id.replace("-", ""),)).fetchone()

    def all(self, sql: str, instance_id: str):
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=20) as db:
            return db.execute(sql.replace("%s", "?"), (instance_id.replace("-", ""),)).fetchall()


class DjangoReader:
    """Reads through the test's own (autocommit) connection: every query sees what the children committed."""

    def one(self, sql: str, instance_id: str):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql, [instance_id])
            return cursor.fetchone()

    def all(self, sql: str, instance_id: str):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql, [instance_id])
            return cursor.fetchall()


def _manage(env, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}"
    return done.stdout.strip()


def _manage_shell(env, code: str) -> str:
    return _manage(env, "shell", "-c", code)


def _start_worker(env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, *, what: str, timeout: float = 90.0):
    # A generous ceiling, not a timed assertion: it only stops a broken run from hanging forever.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _kill_mid_build_and_recover(env, reader, log: Path) -> None:
    instance_id = _manage_shell(env, SETUP).splitlines()[-1]

    def state() -> str:
        return reader.one("SELECT state FROM compute_instance WHERE id = %s", instance_id)[0]

    def domains() -> int:
        return reader.one("SELECT count(*) FROM compute_simulateddomain WHERE uuid = %s", instance_id)[0]

    assert state() == "pending"

    first = _start_worker(env, log)
    try:
        # Mid-build: the worker claimed the build and created the domain, which is still booting.
        _wait_for(lambda: state() == "building" and domains() == 1, what="the build to start")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        _stop(first)
    assert first.returncode == -signal.SIGKILL
    assert state() == "building"  # the message died with the worker: without the reconciler it stays stuck

    second = _start_worker(env, log)
    try:
        # The reconciler re-enqueues the build once the grace period without progress has passed.
        _wait_for(lambda: "1 re-enqueued" in _manage_shell(env, RECONCILE), what="the reconciler to re-enqueue")
        _wait_for(lambda: state() in ("running", "error"), what="the build to finish")
    finally:
        _stop(second)

    assert state() == "running", log.read_text()[-3000:]
    assert domains() == 1  # the second attempt adopted the first attempt's domain
    events = reader.all(
        "SELECT action, result FROM compute_instanceevent WHERE instance_id = %s ORDER BY id", instance_id
    )
    assert ("reconcile", "requested") in events
    assert tuple(events[-1]) == ("build", "succeeded")


def test_a_worker_killed_mid_build_is_recovered_by_the_reconciler(tmp_path):
    database = tmp_path / "hangar.sqlite3"
    env = _environment(tmp_path, f"sqlite:///{database}")
    _manage(env, "migrate", "--noinput", "-v", "0")
    _kill_mid_build_and_recover(env, SQLiteReader(database), tmp_path / "worker.log")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_build_is_recovered_on_postgresql(tmp_path):
    from django.db import connection

    db = connection.settings_dict  # the live test database, migrated by pytest-django
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    url = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    _kill_mid_build_and_recover(_environment(tmp_path, url), DjangoReader(), tmp_path / "worker.log")
