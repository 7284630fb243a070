"""A real guest under qemu:///system, driven through the service layer and a real Celery worker subprocess.

The guest is the demo image (scripts/build-demo-image): a Debian kernel and a busybox initramfs that prints
"HANGAR-DEMO-GUEST READY" on its serial console and powers off on ACPI. The test launches it, waits for that line,
stops it (ACPI), resizes it while stopped, starts it, kills libvirtd in the middle of a stop (the task must retry and
finish once libvirtd is back), removes its domain behind Hangar's back (the reconciler must notice), and deletes it:
afterwards libvirt knows nothing of it and its overlay disk is gone.

Skipped when libvirt/QEMU are not installed here, unless HANGAR_REQUIRE_LIBVIRT=1 (CI), where that is a failure.
The worker and this test share a private SQLite file and the embedded broker in a temporary HANGAR_VAR_DIR, whatever
database the rest of the suite uses. Timings of each step are printed (pytest -s shows them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
URI = "qemu:///system"
READY_LINE = "HANGAR-DEMO-GUEST READY"
REQUIRED = os.environ.get("HANGAR_REQUIRE_LIBVIRT", "") == "1"
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
}


def _unavailable() -> str:
    """Why real guests cannot run here ("" if they can)."""
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed (pip install -e '.[libvirt]')"
    for program in ("virsh", "libvirtd", "qemu-system-x86_64", "qemu-img", "busybox", "cpio"):
        if shutil.which(program) is None:
            return f"{program} is not installed (scripts/ci-libvirt installs it)"
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as error:
        return f"libvirtd does not answer at {URI} ({error}); scripts/ci-libvirt starts it"
    return ""


@pytest.fixture(scope="module")
def demo_image() -> Path:
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"HANGAR_REQUIRE_LIBVIRT=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    image_dir = Path(settings.HANGAR_IMAGE_DIR)
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-demo-image"), str(image_dir)], capture_output=True, text=True, timeout=600
    )
    if build.returncode != 0:
        message = f"scripts/build-demo-image failed:\n{build.stdout}\n{build.stderr}"
        if REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return image_dir / "demo"


# --- the worker and this process share a private database and broker -------------------------------------------------
class Worker:
    """A Celery worker subprocess (prefork, one child) on the test's own SQLite file and embedded broker."""

    def __init__(self, var_dir: Path):
        self.var_dir = var_dir
        self.database = var_dir / "hangar.sqlite3"
        self.log = var_dir / "worker.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC"))}
        self.env.pop("CELERY_BROKER_URL", None)  # the embedded broker, under HANGAR_VAR_DIR
        self.env.update(
            HANGAR_VAR_DIR=str(var_dir),
            DATABASE_URL=f"sqlite:///{self.database}",
            CACHE_URL=f"file://{var_dir / 'cache'}",
            HANGAR_IMAGE_DIR=str(settings.HANGAR_IMAGE_DIR),
            LIBVIRT_SHUTDOWN_TIMEOUT="30",
            PYTHONUNBUFFERED="1",
            DEBUG="0",
        )
        self.process: subprocess.Popen | None = None

    def migrate(self) -> None:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(str(BIN / "celery"), "-A", "portal", "worker", "--loglevel", "INFO", "--concurrency", "1"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


@contextmanager
def shared_database(path: Path):
    """This thread's ORM works on the worker's SQLite file for the duration (the test database is left as it is)."""
    from django.db import connections
    from django.db.utils import load_backend

    config = connections.configure_settings(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": dict(SQLITE_OPTIONS)}}
    )["default"]
    wrapper = load_backend(config["ENGINE"]).DatabaseWrapper(config, "default")
    previous = connections["default"]
    connections["default"] = wrapper
    try:
        yield
    finally:
        wrapper.close()
        connections["default"] = previous


@contextmanager
def publishing_to(var_dir: Path, monkeypatch):
    """Tasks this process enqueues go to the worker's embedded broker instead of running eagerly."""
    from portal.celery import app

    # Celery prefers these variables to its configuration (the PostgreSQL + Redis run of the suite sets one).
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    broker = var_dir / "broker"
    for folder in ("queue", "control", "processed"):
        (broker / folder).mkdir(parents=True, exist_ok=True)
    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}

    def reset_pools():
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(
        broker_url="filesystem://",
        broker_transport_options={
            "data_folder_in": str(broker / "queue"),
            "data_folder_out": str(broker / "queue"),
            "control_folder": str(broker / "control"),
            "processed_folder": str(broker / "processed"),
            "store_processed": False,
            "polling_interval": 0.1,
        },
        task_always_eager=False,
    )
    reset_pools()
    try:
        yield
    finally:
        reset_pools()
        app.conf.update(saved)


# --- libvirtd, killed and revived by the test ---------------------------------------------------------------------
def libvirtd_pid() -> int | None:
    """The running libvirtd's pid; None if it is gone (a killed one may linger as a zombie until reaped)."""
    try:
        pid = int(LIBVIRTD_PIDFILE.read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else pid


def libvirtd_answers() -> bool:
    import libvirt

    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError:
        return False
    return True


def start_libvirtd() -> None:
    if libvirtd_pid() is None:
        subprocess.run(["libvirtd", "-d"], check=True, timeout=60)


def virsh(*args: str) -> str:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=60).stdout


# --- the test -------------------------------------------------------------------------------------------------------
def test_a_real_guest_boots_stops_resizes_restarts_survives_libvirtd_and_is_deleted(
    demo_image, tmp_path, django_db_blocker, monkeypatch
):
    import libvirt

    from compute import reconciler, services
    from compute.console import instance_console_output
    from compute.models import Flavor, Host, Image, Instance
    from tenants.roles import Role
    from tests.factories import MembershipFactory

    worker = Worker(tmp_path)
    timings: dict[str, float] = {}
    instance_id = None
    killed_libvirtd = False

    def wait_for(predicate, *, what: str, timeout: float) -> float:
        started = time.monotonic()
        while not predicate():
            assert worker.alive(), f"the worker exited:\n{worker.output()[-4000:]}"
            if time.monotonic() - started > timeout:
                raise AssertionError(f"waited {timeout:.0f} s for {what}; worker log:\n{worker.output()[-4000:]}")
            time.sleep(0.25)
        return time.monotonic() - started

    def current() -> Instance:
        return Instance.objects.select_related("host", "flavor").get(pk=instance_id)

    def in_state(state: str):
        return lambda: current().state == state

    def console() -> str:
        return instance_console_output(instance=current(), lines=200)

    started = time.monotonic()
    worker.migrate()
    worker.start()
    try:
        with django_db_blocker.unblock(), shared_database(worker.database), publishing_to(tmp_path, monkeypatch):
            Host.objects.create(name="local-qemu", driver="libvirt", uri=URI, vcpus=4, ram_mib=4096, disk_gib=50)
            tiny = Flavor.objects.create(name="it.tiny", vcpus=1, ram_mib=160, disk_gib=1, monthly_price=Decimal("1"))
            small = Flavor.objects.create(name="it.small", vcpus=2, ram_mib=192, disk_gib=2, monthly_price=Decimal("2"))
            image = Image.objects.create(
                name="Hangar demo guest",
                os="BusyBox",
                version="demo",
                min_disk_gib=1,
                min_ram_mib=128,
                disk_path=str(demo_image / "disk.raw"),
                disk_format="raw",
                kernel_path=str(demo_image / "vmlinuz"),
                initrd_path=str(demo_image / "initrd.img"),
                kernel_cmdline="console=ttyS0 quiet",
            )
            membership = MembershipFactory(role=Role.OWNER)
            tenant, user = membership.tenant, membership.user

            # Launch → running, and the guest's boot line on the serial console.
            launched_at = time.monotonic()
            instance = services.instance_launch(
                tenant=tenant, user=user, name="it-guest", flavor=tiny, image=image, keys=[]
            )
            instance_id = instance.pk
            wait_for(in_state("running"), what="the build", timeout=180)
            wait_for(lambda: READY_LINE in console(), what="the boot line on the serial console", timeout=180)
            timings["launch → boot line"] = time.monotonic() - launched_at

            conn = libvirt.open(URI)
            domain = conn.lookupByUUIDString(str(instance_id))
            assert domain.name() == f"hangar-{instance_id}" and domain.isActive()
            pool = conn.storagePoolLookupByName("hangar")
            pool_path = Path(ElementTree.fromstring(pool.XMLDesc(0)).findtext("target/path"))
            overlay = pool_path / f"{instance_id}.qcow2"
            assert overlay.is_file()

            # Stop: an ACPI shutdown the guest honours (not a forced power-off).
            services.instance_stop(instance=current(), user=user)
            timings["stop (ACPI)"] = wait_for(in_state("stopped"), what="the stop", timeout=120)
            assert "ACPI power button" in console()
            assert not domain.isActive()

            # Resize while stopped: vCPUs, memory and a larger disk (qemu-img resize on the overlay).
            services.instance_resize(instance=current(), user=user, flavor=small)
            timings["resize"] = wait_for(
                lambda: current().state == "stopped" and current().flavor_id == small.pk, what="the resize", timeout=120
            )
            definition = ElementTree.fromstring(conn.lookupByUUIDString(str(instance_id)).XMLDesc(0))
            assert definition.findtext("vcpu") == "2"
            assert int(definition.findtext("memory")) == 192 * 1024
            pool.refresh(0)
            assert pool.storageVolLookupByName(f"{instance_id}.qcow2").info()[1] == 2 * 1024**3

            # Start again: a second boot line.
            services.instance_start(instance=current(), user=user)
            restarted_at = time.monotonic()
            wait_for(in_state("running"), what="the start", timeout=120)
            wait_for(lambda: console().count(READY_LINE) >= 2, what="the second boot line", timeout=180)
            timings["start → boot line"] = time.monotonic() - restarted_at
            conn.close()

            # Kill libvirtd as the stop begins: the task fails on the dead connection, retries, and finishes once
            # libvirtd is back.
            pid = libvirtd_pid()
            assert pid is not None, "libvirtd runs without /run/libvirtd.pid; start it with `libvirtd -d`"
            retries_before = worker.output().count("retry: Retry in")
            services.instance_stop(instance=current(), user=user)
            os.kill(pid, signal.SIGKILL)
            killed_libvirtd = True
            wait_for(lambda: libvirtd_pid() is None, what="libvirtd to die", timeout=30)
            outage_started = time.monotonic()
            wait_for(
                lambda: worker.output().count("retry: Retry in") > retries_before,
                what="the stop task to retry",
                timeout=60,
            )
            assert current().state == "stopping"
            start_libvirtd()
            wait_for(libvirtd_answers, what="libvirtd to come back", timeout=60)
            killed_libvirtd = False
            wait_for(in_state("stopped"), what="the stop after libvirtd came back", timeout=180)
            timings["stop across a libvirtd restart"] = time.monotonic() - outage_started

            # A domain removed behind Hangar's back: the reconciler puts the instance in error.
            virsh("undefine", f"hangar-{instance_id}")
            report = reconciler.reconcile()
            assert str(instance_id) in report.vanished
            assert current().state == "error"

            # Delete: nothing of ours is left on the host.
            services.instance_delete(instance=current(), user=user)
            timings["delete"] = wait_for(in_state("deleted"), what="the delete", timeout=120)
            assert f"hangar-{instance_id}" not in virsh("list", "--all", "--name").split()
            assert not overlay.exists()
            assert not (pool_path / f"{instance_id}.console.log").exists()
    finally:
        if killed_libvirtd:
            start_libvirtd()
        worker.stop()
        if instance_id is not None and libvirtd_answers():
            _remove_domain(str(instance_id))
        timings["total"] = time.monotonic() - started
        print("\nlibvirt integration timings: " + ", ".join(f"{step} {sec:.1f} s" for step, sec in timings.items()))


def _remove_domain(uuid: str) -> None:
    """Leave the host clean even when the test failed half-way."""
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    LibvirtDriver(Host(name="cleanup", driver="libvirt", uri=URI, vcpus=1, ram_mib=256, disk_gib=1)).destroy(uuid)


def test_evacuating_a_host_moves_running_and_stopped_guests_to_another_pool(
    demo_image, tmp_path, django_db_blocker, monkeypatch
):
    """Two hosts on this machine's libvirt, each with its own storage pool: evacuating the first moves a running
    guest (shut down, disk copied, booted again) and a stopped one (copied, left off) to the second."""
    import libvirt

    from compute import services
    from compute.console import instance_console_output
    from compute.models import Flavor, Host, Image, Instance
    from tenants.roles import Role
    from tests.factories import MembershipFactory, UserFactory

    worker = Worker(tmp_path)
    instance_ids: list = []
    started = time.monotonic()

    def wait_for(predicate, *, what: str, timeout: float) -> None:
        begun = time.monotonic()
        while not predicate():
            assert worker.alive(), f"the worker exited:\n{worker.output()[-4000:]}"
            if time.monotonic() - begun > timeout:
                raise AssertionError(f"waited {timeout:.0f} s for {what}; worker log:\n{worker.output()[-4000:]}")
            time.sleep(0.25)

    def state_of(pk) -> str:
        return Instance.objects.get(pk=pk).state

    worker.migrate()
    worker.start()
    try:
        with django_db_blocker.unblock(), shared_database(worker.database), publishing_to(tmp_path, monkeypatch):
            source = Host.objects.create(
                name="evac-a", driver="libvirt", uri=URI, storage_pool="hangar", vcpus=4, ram_mib=4096, disk_gib=50
            )
            target = Host.objects.create(
                name="evac-b", driver="libvirt", uri=URI, storage_pool="hangar-evac", vcpus=4, ram_mib=4096,
                disk_gib=50, enabled=False,
            )  # fmt: skip
            tiny = Flavor.objects.create(name="ev.tiny", vcpus=1, ram_mib=160, disk_gib=1, monthly_price=Decimal("1"))
            image = Image.objects.create(
                name="Hangar demo guest",
                os="BusyBox",
                version="demo",
                min_disk_gib=1,
                min_ram_mib=128,
                disk_path=str(demo_image / "disk.raw"),
                disk_format="raw",
                kernel_path=str(demo_image / "vmlinuz"),
                initrd_path=str(demo_image / "initrd.img"),
                kernel_cmdline="console=ttyS0 quiet",
            )
            membership = MembershipFactory(role=Role.OWNER)
            tenant, user = membership.tenant, membership.user
            operator = UserFactory(email="evacuating-operator@example.com", is_staff=True)

            running = services.instance_launch(tenant=tenant, user=user, name="ev-run", flavor=tiny, image=image)
            stopped = services.instance_launch(tenant=tenant, user=user, name="ev-off", flavor=tiny, image=image)
            instance_ids += [running.pk, stopped.pk]
            for pk in instance_ids:
                wait_for(lambda pk=pk: state_of(pk) == "running", what="the builds", timeout=180)
            services.instance_stop(instance=Instance.objects.get(pk=stopped.pk), user=user)
            wait_for(lambda: state_of(stopped.pk) == "stopped", what="the stop", timeout=120)
            services.host_enable(host=target, actor=operator)

            evacuation = services.host_evacuate(host=source, actor=operator)
            assert len(evacuation.moving) == 2 and evacuation.left == [], evacuation.summary()
            for pk in instance_ids:
                wait_for(lambda pk=pk: state_of(pk) in ("running", "stopped", "error"), what="the moves", timeout=300)

            moved_running, moved_stopped = (Instance.objects.get(pk=pk) for pk in instance_ids)
            assert (moved_running.state, moved_running.host_id) == ("running", target.pk), moved_running.error_reason
            assert (moved_stopped.state, moved_stopped.host_id) == ("stopped", target.pk), moved_stopped.error_reason
            conn = libvirt.open(URI)
            pools = {name: conn.storagePoolLookupByName(name) for name in ("hangar", "hangar-evac")}
            for pool in pools.values():
                pool.refresh(0)
            for pk in instance_ids:
                assert f"{pk}.qcow2" in pools["hangar-evac"].listVolumes()
                assert f"{pk}.qcow2" not in pools["hangar"].listVolumes()
            assert conn.lookupByUUIDString(str(moved_running.pk)).isActive()
            assert not conn.lookupByUUIDString(str(moved_stopped.pk)).isActive()
            conn.close()
            # The moved guest boots from its copied disk: its console (now in the new pool) shows the boot line.
            wait_for(
                lambda: READY_LINE in instance_console_output(instance=Instance.objects.get(pk=running.pk), lines=200),
                what="the boot line on the new host",
                timeout=180,
            )
            events = list(moved_running.events.filter(action="migrate").values_list("result", flat=True))
            assert events == ["succeeded", "requested"]
    finally:
        worker.stop()
        if libvirtd_answers():
            for pk in instance_ids:
                _remove_moved_domain(str(pk))
        print(f"\nlibvirt evacuation: {time.monotonic() - started:.1f} s")


def _remove_moved_domain(uuid: str) -> None:
    """Leave both pools clean even when the evacuation test failed half-way."""
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    for pool in ("hangar", "hangar-evac"):
        host = Host(name="cleanup", driver="libvirt", uri=URI, storage_pool=pool, vcpus=1, ram_mib=256, disk_gib=1)
        LibvirtDriver(host).destroy(uuid)
