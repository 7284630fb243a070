"""A real guest under qemu:///system, driven through the service layer and a real Celery worker subprocess.

The guest is the demo image (scripts/build-demo-image): a Debian kernel and a busybox initramfs that prints
"HANGAR-DEMO-GUEST READY" on its serial console and powers off on ACPI. The test launches it, waits for that line,
stops it (ACPI), resizes it while stopped, starts it, kills libvirtd in the middle of a stop (the task must retry and
finish once libvirtd is back), removes its domain behind Hangar's back (the reconciler must notice), and deletes it:
afterwards libvirt knows nothing of it and its overlay disk is gone.

A second guest joins a Hangar network with a cloud-init seed and a firewall: the test logs in over SSH with the key of
the seed, reads the file its user-data wrote and its hostname, reaches it at a public address through the host's 1:1
NAT, closes and reopens port 22 live, measures 2 MiB it sends, and deletes it: nothing of it is left on the host.

libvirtd runs inside the network namespace $HANGAR_LIBVIRT_NETNS (scripts/ci-libvirt creates it and starts libvirtd
there), so guest bridges and every packet to a guest stay in it; the test reaches guests with `ip netns exec … ssh`.
Public addresses come from 203.0.113.0/24, routed only inside that namespace.

Skipped when libvirt/QEMU or the namespace are not set up here, unless HANGAR_REQUIRE_LIBVIRT=1 (CI), where that is a
failure. The worker and this test share a private SQLite file and the embedded broker in a temporary HANGAR_VAR_DIR,
whatever database the rest of the suite uses. Timings of each step are printed (pytest -s shows them).
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
NETNS = os.environ.get("HANGAR_LIBVIRT_NETNS", "")
SETUP_COMMAND = "HANGAR_LIBVIRT_NETNS=hangar scripts/ci-libvirt, then run the tests with HANGAR_LIBVIRT_NETNS=hangar"
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
PUBLIC_IP = "203.0.113.10"
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
    programs = ("virsh", "libvirtd", "qemu-system-x86_64", "qemu-img", "busybox", "cpio", "dropbear", "genisoimage")
    for program in (*programs, "dnsmasq", "nft", "ip", "ssh", "ssh-keygen"):
        if shutil.which(program) is None:
            return f"{program} is not installed ({SETUP_COMMAND})"
    if not NETNS:
        return f"HANGAR_LIBVIRT_NETNS names no network namespace for the guests ({SETUP_COMMAND})"
    if os.geteuid() != 0:
        return "reaching guests inside a network namespace needs root"
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as error:
        return f"libvirtd does not answer at {URI} ({error}); {SETUP_COMMAND}"
    pid = libvirtd_pid()
    if pid is None or not in_namespace(pid):
        return f"libvirtd does not run in network namespace {NETNS} ({SETUP_COMMAND})"
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


def in_namespace(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{NETNS}").st_ino
    except OSError:
        return False


def start_libvirtd() -> None:
    if libvirtd_pid() is None:
        subprocess.run(["ip", "netns", "exec", NETNS, "libvirtd", "-d"], check=True, timeout=60)


# --- guests, reached from inside the namespace ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory) -> Path:
    """A key made for this run; the guests get its public half through their seed."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    return key


def ssh(key: Path, address: str, command: str, *, timeout: float = 20) -> subprocess.CompletedProcess:
    """`command` on the guest as root; a connection that hangs (a firewall closing mid-handshake) counts as failed."""
    options = (
        *("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes", "LogLevel=ERROR"),
        *("ConnectTimeout=3", "ServerAliveInterval=2", "ServerAliveCountMax=2"),
    )
    argv = [
        *("ip", "netns", "exec", NETNS, "ssh", "-i", str(key)),
        *(part for option in options for part in ("-o", option)),
        f"root@{address}",
        command,
    ]
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        return subprocess.CompletedProcess(argv, 124, stdout=expired.stdout or b"", stderr=expired.stderr or b"")


def wait_for_ssh(key: Path, address: str, *, timeout: float) -> float:
    started = time.monotonic()
    while ssh(key, address, "true").returncode != 0:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"no SSH at {address} after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def namespace(*command: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", NETNS, *command], capture_output=True, text=True, timeout=30, check=False
    ).stdout


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


# --- networking, at driver level --------------------------------------------------------------------------------------
def test_a_real_guest_takes_its_seed_and_answers_ssh_at_private_and_public_addresses_behind_its_firewall(
    demo_image, ssh_key
):
    import libvirt

    from compute.drivers.base import (
        CloudInitSeed,
        DhcpHost,
        DomainSpec,
        FirewallRuleSpec,
        ImageSource,
        NatMapping,
        NetworkSpec,
        NicSpec,
    )
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    driver = LibvirtDriver(Host(name="local-qemu", driver="libvirt", uri=URI, vcpus=2, ram_mib=1024, disk_gib=10))
    network_id, uuid = "0e7a3c55-1d2f-4b8e-9a6c-5f4e3d2c1b0a", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    mac, private_ip = "52:54:00:3c:55:0a", "10.123.0.5"
    timings: dict[str, float] = {}
    ssh_in = FirewallRuleSpec(direction="in", protocol="tcp", port_min=22, port_max=22, cidr="0.0.0.0/0")
    icmp_in = FirewallRuleSpec(direction="in", protocol="icmp", port_min=None, port_max=None, cidr="0.0.0.0/0")
    all_out = FirewallRuleSpec(direction="out", protocol="any", port_min=None, port_max=None, cidr="0.0.0.0/0")
    public_key = ssh_key.with_suffix(".pub").read_text().strip()
    seed = CloudInitSeed(
        meta_data=f"instance-id: {uuid}\nlocal-hostname: it-net-guest\n",
        user_data=(
            "#cloud-config\n"
            f"ssh_authorized_keys:\n  - {public_key}\n"
            "write_files:\n  - path: /root/from-user-data.txt\n    content: |\n      written by user-data\n"
        ),
        network_config=(
            f'version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: "{mac}"\n'
            f"    addresses:\n      - {private_ip}/24\n    routes:\n      - to: default\n        via: 10.123.0.1\n"
        ),
    )
    spec = DomainSpec(
        uuid=uuid,
        name="it-net-guest",
        vcpus=1,
        ram_mib=160,
        disk_gib=1,
        image=ImageSource(
            disk_path=str(demo_image / "disk.raw"),
            kernel_path=str(demo_image / "vmlinuz"),
            initrd_path=str(demo_image / "initrd.img"),
            kernel_cmdline="console=ttyS0 quiet",
        ),
        nics=(NicSpec(mac=mac, network_id=network_id, ip=private_ip, prefix=24),),
        seed=seed,
        firewall=(ssh_in, icmp_in, all_out),
    )
    started = time.monotonic()
    try:
        # A tenant network with the guest's fixed lease, the guest on it: SSH with the seed's key, its file, its name.
        driver.network_ensure(
            NetworkSpec(
                id=network_id,
                name="default",
                cidr="10.123.0.0/24",
                gateway_ip="10.123.0.1",
                dhcp_hosts=(DhcpHost(mac=mac, ip=private_ip, hostname="it-net-guest"),),
            )
        )
        assert driver.create(spec).private_ip == private_ip
        wait_for_ssh(ssh_key, private_ip, timeout=120)
        timings["create → SSH"] = time.monotonic() - started
        answer = ssh(ssh_key, private_ip, "cat /root/from-user-data.txt; hostname")
        assert answer.stdout.decode().split("\n")[:2] == ["written by user-data", "it-net-guest"], answer

        # 1:1 NAT: the public address leads to the guest.
        step = time.monotonic()
        driver.nat_apply((NatMapping(public_ip=PUBLIC_IP, private_ip=private_ip),))
        assert ssh(ssh_key, PUBLIC_IP, "hostname").stdout.decode().strip() == "it-net-guest"
        timings["NAT → SSH at the public address"] = time.monotonic() - step

        # The firewall without port 22, live: SSH fails; with it again: SSH works.
        step = time.monotonic()
        driver.firewall_apply(uuid, (icmp_in, all_out))
        assert ssh(ssh_key, PUBLIC_IP, "true", timeout=10).returncode != 0
        driver.firewall_apply(uuid, (ssh_in, icmp_in, all_out))
        assert ssh(ssh_key, PUBLIC_IP, "true").returncode == 0
        timings["firewall closed and reopened"] = time.monotonic() - step

        # 2 MiB sent by the guest show in its counters.
        step = time.monotonic()
        before = driver.interface_counters(uuid)
        sent = ssh(ssh_key, PUBLIC_IP, "head -c 2097152 /dev/zero", timeout=60)
        assert len(sent.stdout) == 2 * 1024**2
        after = driver.interface_counters(uuid)
        assert after.tx_bytes - before.tx_bytes >= 2 * 1024**2
        timings["2 MiB metered"] = time.monotonic() - step

        # Gone: nothing of the guest, its network or its address is left on the host.
        step = time.monotonic()
        driver.destroy(uuid)
        driver.nat_apply(())
        driver.network_remove(network_id)
        timings["delete"] = time.monotonic() - step
        conn = libvirt.open(URI)
        try:
            assert f"hangar-{uuid}" not in virsh("list", "--all", "--name").split()
            assert not [name for name in conn.storagePoolLookupByName("hangar").listVolumes() if uuid in name]
            assert f"hangar-fw-{uuid}" not in virsh("nwfilter-list")
            assert f"hangar-net-{network_id}" not in virsh("net-list", "--all", "--name").split()
        finally:
            conn.close()
        assert PUBLIC_IP not in namespace("nft", "list", "table", "ip", "hangar")
        assert "hgn-0e7a3c551d2" not in namespace("ip", "-br", "link")
    finally:
        driver.destroy(uuid)
        driver.network_remove(network_id)
        timings["total"] = time.monotonic() - started
        print("\nlibvirt networking timings: " + ", ".join(f"{step} {sec:.1f} s" for step, sec in timings.items()))


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


@pytest.mark.django_db(transaction=True)
def test_a_line_typed_into_a_real_guests_console_gets_its_reply(demo_image):
    """The interactive console end to end: the WebSocket consumer, the libvirt driver's console stream (opened with
    virDomainOpenConsole) and the demo guest's shell on ttyS0, which evaluates what it is sent."""
    import asyncio
    import json

    from channels.routing import URLRouter

    from compute.console.routing import websocket_urlpatterns
    from compute.console.sessions import console_ticket
    from compute.drivers import driver_for
    from compute.drivers.base import DomainSpec, ImageSource
    from compute.models import Host, InstanceState
    from tenants.roles import Role
    from tests.factories import MembershipFactory
    from tests.factories.compute import FlavorFactory, ImageFactory, InstanceFactory
    from tests.websocket import WebsocketCommunicator, run_async

    host = Host.objects.create(name="local-qemu-console", driver="libvirt", uri=URI, vcpus=2, ram_mib=2048, disk_gib=10)
    membership = MembershipFactory(role=Role.MEMBER)
    instance = InstanceFactory(
        tenant=membership.tenant,
        created_by=membership.user,
        name="it-console",
        flavor=FlavorFactory(name="it.console", vcpus=1, ram_mib=160, disk_gib=1),
        image=ImageFactory(name="Hangar demo guest (console)"),
        host=host,
        state=InstanceState.RUNNING,
    )
    uuid = str(instance.pk)
    driver = driver_for(host)
    source = ImageSource(
        disk_path=str(demo_image / "disk.raw"),
        disk_format="raw",
        kernel_path=str(demo_image / "vmlinuz"),
        initrd_path=str(demo_image / "initrd.img"),
        kernel_cmdline="console=ttyS0 quiet",
    )
    timings = {}
    started = time.monotonic()
    try:
        driver.create(DomainSpec(uuid=uuid, name="it-console", vcpus=1, ram_mib=160, disk_gib=1, image=source))
        deadline = time.monotonic() + 180
        while READY_LINE not in driver.console_output(uuid, lines=200):
            assert time.monotonic() < deadline, "the guest never printed its ready line"
            time.sleep(0.5)
        timings["boot"] = time.monotonic() - started

        async def scenario() -> str:
            communicator = WebsocketCommunicator(
                URLRouter(websocket_urlpatterns),
                f"/ws/instances/{uuid}/console/?ticket={console_ticket(instance=instance, user=membership.user)}",
            )
            communicator.scope["user"] = membership.user
            connected, _ = await communicator.connect()
            assert connected
            screen = ""
            sent = False
            deadline = asyncio.get_running_loop().time() + 60
            while "hangar-42" not in screen.replace("hangar-$((6*7))", ""):
                remaining = deadline - asyncio.get_running_loop().time()
                assert remaining > 0, f"no reply from the guest's shell; the console showed: {screen[-2000:]!r}"
                try:
                    message = await communicator.receive_output(timeout=min(remaining, 3))
                except TimeoutError:
                    message = None
                if message is not None and message["type"] == "websocket.close":
                    raise AssertionError(f"the console closed: {screen[-2000:]!r}")
                if message is not None and message.get("text"):
                    assert json.loads(message["text"])["final"] is False, message["text"]
                elif message is not None and message.get("bytes"):
                    screen += message["bytes"].decode(errors="replace")
                if not sent or message is None:
                    # The line the test types; the shell echoes it and prints the sum it asks for.
                    await communicator.send_to(text_data="echo hangar-$((6*7))\r")
                    sent = True
            await communicator.disconnect()
            return screen

        screen = run_async(scenario)
        timings["console reply"] = time.monotonic() - started - timings["boot"]
        assert "hangar-42" in screen
    finally:
        _remove_domain(uuid)
        print("\nlibvirt console timings: " + ", ".join(f"{step} {sec:.1f} s" for step, sec in timings.items()))
