"""Volumes and snapshots on real guests under qemu:///system, through the API and a real Celery worker.

Two guests of the demo image (scripts/build-demo-image: busybox with mke2fs, and the ext4 module) are launched with an
SSH key. A 1 GiB volume is created, attached to the first (hot-plugged: /dev/vdb appears inside while it runs),
formatted and given a file over SSH, detached (the disk leaves the guest), attached to the second, where the file
is read back, extended online to 2 GiB (the guest sees the new size at once), snapshotted while attached to the
running guest (a live block copy), and a new volume made from the snapshot has the file too. Then everything is
deleted and nothing of it is left in the host's `hangar` pool.

Needs what tests/compute/test_libvirt_integration.py needs (HANGAR_LIBVIRT_NETNS=hangar; HANGAR_REQUIRE_LIBVIRT=1
turns a missing setup into a failure); timings are printed (pytest -s shows them).
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.compute.test_libvirt_integration import (  # noqa: F401  (demo_image and ssh_key are fixtures)
    URI,
    Worker,
    _remove_domain,
    _remove_network,
    demo_image,
    demo_image_registered,
    local_host,
    publishing_to,
    shared_database,
    ssh,
    ssh_key,
    wait_for_ssh,
)

pytestmark = pytest.mark.slow

GIB = 1024**3
CONTENT = "kept on a hangar volume"
# Format (busybox mke2fs), mount, write, unmount: the data must be on the disk before it is detached.
WRITE = (
    "mke2fs -q /dev/vdb && mkdir -p /mnt/v && mount -t ext4 /dev/vdb /mnt/v"
    f" && echo '{CONTENT}' > /mnt/v/hello.txt && sync && umount /mnt/v"
)
READ = "mkdir -p /mnt/v && mount -t ext4 /dev/vdb /mnt/v && cat /mnt/v/hello.txt"


def test_a_volume_moves_between_real_guests_grows_online_and_is_snapshotted(
    demo_image,  # noqa: F811
    ssh_key,  # noqa: F811
    tmp_path,
    django_db_blocker,
    monkeypatch,
):
    import libvirt
    from rest_framework.test import APIClient

    from compute.models import Flavor
    from compute.network.models import Network
    from tenants.models import ApiToken
    from tenants.roles import Role
    from tenants.services import api_token_create
    from tests.factories import MembershipFactory

    worker = Worker(tmp_path)
    timings: dict[str, float] = {}
    machines: list[str] = []
    volumes: list[str] = []
    snapshots: list[str] = []
    networks: list[str] = []

    def step(name: str, since: float) -> float:
        timings[name] = time.monotonic() - since
        return time.monotonic()

    started = time.monotonic()
    worker.migrate()
    worker.start()
    try:
        with django_db_blocker.unblock(), shared_database(worker.database), publishing_to(tmp_path, monkeypatch):
            local_host()
            image = demo_image_registered(demo_image)
            flavor = Flavor.objects.create(name="it.vol", vcpus=1, ram_mib=192, disk_gib=1, monthly_price=Decimal("1"))
            membership = MembershipFactory(role=Role.OWNER)
            secret = api_token_create(membership=membership, name="it", scope=ApiToken.Scope.READ_WRITE)[1]
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

            def call(method: str, url: str, body: dict | None = None, *, expect: int) -> dict:
                response = getattr(api, method)(f"/api/v1/{url}", body, format="json")
                assert response.status_code == expect, (method, url, response.status_code, response.content)
                return response.json() if response.content else {}

            def settled(kind: str, pk: str, state: str, *, what: str, timeout: float = 120) -> dict:
                worker.wait_for(
                    lambda: call("get", f"{kind}/{pk}/", expect=200)["state"] in (state, "error"),
                    what=what,
                    timeout=timeout,
                )
                item = call("get", f"{kind}/{pk}/", expect=200)
                assert item["state"] == state, item
                return item

            def on(address: str, command: str, *, timeout: float = 60) -> str:
                result = ssh(ssh_key, address, command, timeout=timeout)
                if result.returncode != 0:
                    guest = ssh(ssh_key, address, "cat /proc/filesystems; dmesg | tail -n 20").stdout.decode()
                    raise AssertionError(f"{command!r} failed: {result.stdout!r} {result.stderr!r}\n{guest}")
                return result.stdout.decode().strip()

            def has_vdb(address: str) -> bool:
                return ssh(ssh_key, address, "test -b /dev/vdb").returncode == 0

            # Two guests, reached over SSH with the key.
            at = time.monotonic()
            key = call(
                "post", "ssh-keys/", {"name": "it", "public_key": ssh_key.with_suffix(".pub").read_text()}, expect=201
            )
            for name in ("it-vol-a", "it-vol-b"):
                body = {"name": name, "flavor": str(flavor.pk), "image": str(image.pk), "ssh_keys": [key["id"]]}
                machines.append(call("post", "instances/", body, expect=202)["id"])
            networks.extend(
                str(pk) for pk in Network.objects.filter(tenant=membership.tenant).values_list("pk", flat=True)
            )
            addresses = []
            for machine in machines:
                addresses.append(settled("instances", machine, "running", what="a build", timeout=180)["private_ip"])
            for address in addresses:
                wait_for_ssh(ssh_key, address, timeout=120)
            first, second = addresses
            assert not has_vdb(first)
            at = step("two guests up, SSH", at)

            # A volume, attached to the running first guest: the disk appears inside; a file is written on it.
            created = call("post", "volumes/", {"name": "it-data", "size_gib": 1}, expect=202)
            volume = created["id"]
            volumes.append(volume)
            settled("volumes", volume, "available", what="the volume's creation")
            attached = call("post", f"volumes/{volume}/attach/", {"instance": machines[0]}, expect=202)
            assert attached["attachment"]["device"] == "vdb"
            settled("volumes", volume, "in-use", what="the attach")
            worker.wait_for(lambda: has_vdb(first), what="/dev/vdb in the first guest", timeout=30)
            assert int(on(first, "cat /sys/block/vdb/size")) * 512 == GIB
            at = step("create → attach → /dev/vdb inside", at)
            on(first, WRITE)
            at = step("formatted, file written", at)

            # Detached: the disk leaves the first guest. Attached to the second: the file is there.
            call("post", f"volumes/{volume}/detach/", expect=202)
            settled("volumes", volume, "available", what="the detach")
            assert not has_vdb(first)
            call("post", f"volumes/{volume}/attach/", {"instance": machines[1]}, expect=202)
            settled("volumes", volume, "in-use", what="the attach to the second guest")
            worker.wait_for(lambda: has_vdb(second), what="/dev/vdb in the second guest", timeout=30)
            assert on(second, READ) == CONTENT
            at = step("detach → attach to the second guest → file read back", at)

            # Extended online: the running guest sees 2 GiB at once.
            call("post", f"volumes/{volume}/extend/", {"size_gib": 2}, expect=202)
            assert settled("volumes", volume, "in-use", what="the extend")["size_gib"] == 2
            worker.wait_for(
                lambda: on(second, "cat /sys/block/vdb/size") == str(2 * GIB // 512),
                what="the new size inside the guest",
                timeout=30,
            )
            at = step("extended online → 2 GiB inside", at)

            # A snapshot of the volume in use by the running guest, and a new volume from it: it has the file.
            on(second, "sync")
            snapshot = call("post", "snapshots/", {"name": "it-snap", "volume": volume}, expect=202)
            snapshots.append(snapshot["id"])
            assert snapshot["crash_consistent"] is True
            assert settled("snapshots", snapshot["id"], "available", what="the snapshot")["size_gib"] == 2
            copy = call("post", f"snapshots/{snapshot['id']}/volumes/", {"name": "it-copy"}, expect=202)
            volumes.append(copy["id"])
            assert settled("volumes", copy["id"], "available", what="the volume from the snapshot")["size_gib"] == 2
            call("post", f"volumes/{copy['id']}/attach/", {"instance": machines[0]}, expect=202)
            settled("volumes", copy["id"], "in-use", what="the copy's attach")
            worker.wait_for(lambda: has_vdb(first), what="the copy in the first guest", timeout=30)
            assert on(first, READ) == CONTENT
            at = step("snapshot of the running guest's disk → new volume → file there", at)

            # Delete everything: nothing of it is left in the pool.
            on(first, "umount /mnt/v")
            on(second, "umount /mnt/v")
            for pk in volumes:
                call("post", f"volumes/{pk}/detach/", expect=202)
            for pk in volumes:
                settled("volumes", pk, "available", what="a detach")
                call("delete", f"volumes/{pk}/", expect=202)
            call("delete", f"snapshots/{snapshot['id']}/", expect=202)
            for machine in machines:
                call("delete", f"instances/{machine}/", expect=202)
            for pk in volumes:
                settled("volumes", pk, "deleted", what="a volume's deletion")
            settled("snapshots", snapshot["id"], "deleted", what="the snapshot's deletion")
            for machine in machines:
                settled("instances", machine, "deleted", what="a machine's deletion")
            conn = libvirt.open(URI)
            try:
                pool = conn.storagePoolLookupByName("hangar")
                pool.refresh(0)
                ours = [*machines, *volumes, *snapshots]
                left = [name for name in pool.listVolumes() if any(pk in name for pk in ours)]
                assert left == [], left
            finally:
                conn.close()
            step("everything deleted → nothing left in the pool", at)
    finally:
        worker.stop()
        if libvirtd_answers_here():
            for machine in machines:
                _remove_domain(machine)
            _remove_files([*volumes, *snapshots])
            for network in networks:
                _remove_network(network)
        timings["total"] = time.monotonic() - started
        print("\nlibvirt storage timings: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in timings.items()))


def libvirtd_answers_here() -> bool:
    from tests.compute.test_libvirt_integration import libvirtd_answers

    return libvirtd_answers()


def _remove_files(ids: list[str]) -> None:
    """Leave the pool clean even when the test failed half-way."""
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    driver = LibvirtDriver(Host(name="cleanup", driver="libvirt", uri=URI, vcpus=1, ram_mib=256, disk_gib=1))
    for pk in ids:
        for prefix in ("hangar-vol-", "hangar-snap-"):
            driver.volume_delete(f"{prefix}{pk}")
