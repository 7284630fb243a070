"""Real guests under qemu:///system for the tests that need them: what they share.

The demo image and an SSH key (fixtures, offered to every module below tests/compute by its conftest), a Celery
worker subprocess on a private SQLite file and embedded broker that this process shares, this machine's libvirt as a
Hangar host, libvirtd's state in its network namespace, SSH into guests from inside that namespace, and the clean-up
of whatever a failed test left on the host. The `guest_api` fixture (`real_guest_api`) sets up one tenant's owner
driving real guests through the API, for the networking, storage and backup tests: a worker, the demo image, a
flavor, an API token; on the way out the worker is stopped, what the test made is removed from the host, and the
timings of each step are printed.
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

import pytest
from django.conf import settings

from tests.celery_conf import conf_name

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

    def wait_for(self, predicate, *, what: str, timeout: float) -> float:
        """Seconds until `predicate()` holds; fails (with the worker's log) after `timeout` or if the worker died."""
        started = time.monotonic()
        while not predicate():
            assert self.alive(), f"the worker exited:\n{self.output()[-4000:]}"
            if time.monotonic() - started > timeout:
                raise AssertionError(f"waited {timeout:.0f} s for {what}; worker log:\n{self.output()[-4000:]}")
            time.sleep(0.25)
        return time.monotonic() - started

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
    overrides = {
        conf_name("broker_url"): "filesystem://",
        conf_name("broker_transport_options"): {
            "data_folder_in": str(broker / "queue"),
            "data_folder_out": str(broker / "queue"),
            "control_folder": str(broker / "control"),
            "processed_folder": str(broker / "processed"),
            "store_processed": False,
            "polling_interval": 0.1,
        },
        conf_name("task_always_eager"): False,
    }
    saved = {key: app.conf[key] for key in overrides}

    def reset_pools():
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(overrides)
    reset_pools()
    try:
        yield
    finally:
        reset_pools()
        app.conf.update(saved)


def local_host(name: str = "local-qemu", **fields):
    """This machine's libvirt as a Hangar host."""
    from compute.models import Host

    return Host.objects.create(name=name, driver="libvirt", uri=URI, vcpus=4, ram_mib=4096, disk_gib=50, **fields)


def demo_image_registered(demo_image: Path):
    """The demo image as an operator enters it in the admin."""
    from compute.models import Image

    return Image.objects.create(
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


def _remove_domain(uuid: str) -> None:
    """Leave the host clean even when the test failed half-way."""
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    LibvirtDriver(Host(name="cleanup", driver="libvirt", uri=URI, vcpus=1, ram_mib=256, disk_gib=1)).destroy(uuid)


def _remove_network(network_id: str) -> None:
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    LibvirtDriver(Host(name="cleanup", driver="libvirt", uri=URI, vcpus=1, ram_mib=256, disk_gib=1)).network_remove(
        network_id
    )


class GuestApi:
    """The API as the owner sees it, and the guests reached over SSH with the test's key."""

    def __init__(self, *, worker: Worker, ssh_key: Path, membership, flavor, image):
        from rest_framework.test import APIClient

        from tenants.models import ApiToken
        from tenants.services import api_token_create

        self.worker, self.ssh_key, self.membership, self.flavor, self.image = worker, ssh_key, membership, flavor, image
        self.client = APIClient()
        secret = api_token_create(membership=membership, name="it", scope=ApiToken.Scope.READ_WRITE)[1]
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        # What to remove from the host on the way out, even when the test failed half-way.
        self.machines: list[str] = []
        self.networks: list[str] = []
        self.pool_files: list[str] = []
        self.timings: dict[str, float] = {}
        self._step_started = time.monotonic()

    def call(self, method: str, url: str, body: dict | None = None, *, expect: int) -> dict:
        response = getattr(self.client, method)(f"/api/v1/{url}", body, format="json")
        assert response.status_code == expect, (method, url, response.status_code, response.content)
        return response.json() if response.content else {}

    def settled(self, kind: str, pk: str, state: str, *, what: str, timeout: float = 180) -> dict:
        """The item once its work ended, asserted to be in `state` (an `error` ends the wait too)."""
        self.worker.wait_for(
            lambda: self.call("get", f"{kind}/{pk}/", expect=200)["state"] in (state, "error"),
            what=what,
            timeout=timeout,
        )
        item = self.call("get", f"{kind}/{pk}/", expect=200)
        assert item["state"] == state, item
        return item

    def on(self, address: str, command: str, *, timeout: float = 60) -> str:
        """`command`'s output on the guest; a failure shows the guest's file systems and last kernel lines."""
        result = ssh(self.ssh_key, address, command, timeout=timeout)
        if result.returncode != 0:
            guest = ssh(self.ssh_key, address, "cat /proc/filesystems; dmesg | tail -n 20").stdout.decode()
            raise AssertionError(f"{command!r} failed: {result.stdout!r} {result.stderr!r}\n{guest}")
        return result.stdout.decode().strip()

    def upload_key(self) -> dict:
        public_key = self.ssh_key.with_suffix(".pub").read_text()
        return self.call("post", "ssh-keys/", {"name": "it", "public_key": public_key}, expect=201)

    def launch(self, name: str, *, key: dict, image_id: str | None = None, **fields) -> str:
        """A machine launched with the key (from the demo image unless `image_id`); its id. Its networks are noted."""
        from compute.network.models import Network

        body = {"name": name, "flavor": str(self.flavor.pk), "image": image_id or str(self.image.pk)}
        machine = self.call("post", "instances/", {**body, "ssh_keys": [key["id"]], **fields}, expect=202)["id"]
        self.machines.append(machine)
        tenant_networks = Network.objects.filter(tenant=self.membership.tenant).values_list("pk", flat=True)
        self.networks.extend(str(pk) for pk in tenant_networks if str(pk) not in self.networks)
        return machine

    def reachable(self, machine: str, *, timeout: float = 180) -> str:
        """The machine's private address once it runs and answers SSH."""
        address = self.settled("instances", machine, "running", what=f"{machine}'s build", timeout=timeout)
        wait_for_ssh(self.ssh_key, address["private_ip"], timeout=120)
        return address["private_ip"]

    def step(self, name: str) -> None:
        """Records how long the step just finished took (since the previous one)."""
        now = time.monotonic()
        self.timings[name] = now - self._step_started
        self._step_started = now

    def pool_holds(self, ids: list[str]) -> list[str]:
        """The files in the host's `hangar` pool whose names carry one of `ids`."""
        import libvirt

        conn = libvirt.open(URI)
        try:
            pool = conn.storagePoolLookupByName("hangar")
            pool.refresh(0)
            return [name for name in pool.listVolumes() if any(pk in name for pk in ids)]
        finally:
            conn.close()


@contextmanager
def real_guest_api(
    *, label: str, demo_image: Path, ssh_key: Path, tmp_path: Path, django_db_blocker, monkeypatch, **flavor
):
    """A GuestApi on a fresh worker and database; `flavor` gives the flavor's name, vcpus, ram_mib and disk_gib."""
    from compute.models import Flavor
    from tenants.roles import Role
    from tests.factories import MembershipFactory

    worker = Worker(tmp_path)
    started = time.monotonic()
    api = None
    worker.migrate()
    worker.start()
    try:
        with django_db_blocker.unblock(), shared_database(worker.database), publishing_to(tmp_path, monkeypatch):
            local_host()
            image = demo_image_registered(demo_image)
            api = GuestApi(
                worker=worker,
                ssh_key=ssh_key,
                membership=MembershipFactory(role=Role.OWNER),
                flavor=Flavor.objects.create(monthly_price=Decimal("1"), **flavor),
                image=image,
            )
            yield api
    finally:
        worker.stop()
        timings = api.timings if api else {}
        if api and libvirtd_answers():
            for machine in api.machines:
                _remove_domain(machine)
            _remove_pool_files(api.pool_files)
            for network in api.networks:
                _remove_network(network)
        timings["total"] = time.monotonic() - started
        print(f"\nlibvirt {label} timings: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in timings.items()))


@pytest.fixture
def guest_api(demo_image, ssh_key, tmp_path, django_db_blocker, monkeypatch):
    """`with guest_api("storage", name="it.vol", vcpus=1, ram_mib=192, disk_gib=1) as api:` — real_guest_api."""

    def start(label: str, **flavor):
        return real_guest_api(
            label=label,
            demo_image=demo_image,
            ssh_key=ssh_key,
            tmp_path=tmp_path,
            django_db_blocker=django_db_blocker,
            monkeypatch=monkeypatch,
            **flavor,
        )

    return start


def _remove_pool_files(names: list[str]) -> None:
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    driver = LibvirtDriver(Host(name="cleanup", driver="libvirt", uri=URI, vcpus=1, ram_mib=256, disk_gib=1))
    for name in names:
        driver.volume_delete(name)
