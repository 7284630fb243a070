"""A real Celery worker process killed with SIGKILL in the middle of a build: the reconciler finishes the job.

Everything runs in child processes against a private SQLite file and the embedded filesystem broker in a
temporary HANGAR_VAR_DIR, like `make run` does: the test only reads the database to see what happened.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

SETUP = """
from decimal import Decimal
from django.contrib.auth import get_user_model
from compute.models import Flavor, Host, Image
from compute.services import instance_launch
from tenants.services import tenant_create

user = get_user_model().objects.create_user(email="crash@example.com", password="not-used-here-1")
tenant = tenant_create(name="Crash test", owner=user)
Host.objects.create(name="sim-crash", driver="simulated", vcpus=8, ram_mib=16384, disk_gib=200, boot_seconds=8)
flavor = Flavor.objects.create(name="s1", vcpus=1, ram_mib=1024, disk_gib=10, monthly_price=Decimal("5.00"))
image = Image.objects.create(name="Debian 12", os="Debian", version="12", disk_path="/images/debian-12.raw")
instance = instance_launch(tenant=tenant, user=user, name="survivor", flavor=flavor, image=image, keys=[])
print(instance.pk)
"""

RECONCILE = "from compute.reconciler import reconcile; print(reconcile().summary())"


@pytest.fixture
def environment(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "HANGAR_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hangar.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CACHE_URL": f"file://{tmp_path / 'cache'}",
        "COMPUTE_TASK_GRACE_SECONDS": "2",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    return env


def _manage_shell(env, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


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


def _row(env, sql: str, *params):
    database = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=20) as db:
        return db.execute(sql, params).fetchone()


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


def test_a_worker_killed_mid_build_is_recovered_by_the_reconciler(environment, tmp_path):
    env = environment
    instance_id = _manage_shell(env, SETUP).splitlines()[-1].replace("-", "")
    state = lambda: _row(env, "SELECT state FROM compute_instance WHERE id = ?", instance_id)[0]  # noqa: E731
    domains = lambda: _row(env, "SELECT count(*) FROM compute_simulateddomain WHERE uuid = ?", instance_id)[0]  # noqa: E731
    assert state() == "pending"

    log = tmp_path / "worker.log"
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
    events = [
        row
        for row in sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"))
        .execute("SELECT action, result FROM compute_instanceevent WHERE instance_id = ? ORDER BY id", (instance_id,))
        .fetchall()
    ]
    assert ("reconcile", "requested") in events
    assert events[-1] == ("build", "succeeded")
