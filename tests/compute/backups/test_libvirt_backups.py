"""Boot-disk snapshots, private images and backups on real guests under qemu:///system, through the API and a real
Celery worker.

A guest of the demo image (which boots from its initrd; its disk `/dev/vda` is blank) gets a file system and a file
on its disk over SSH. Its disk is snapshotted while it runs (a live block copy), the snapshot becomes a private
image, and a guest launched from that image finds the file on its own disk. Backups are turned on and one is made;
the file is then overwritten, and restoring the backup over the disk (the guest is stopped, its disk replaced, and
started again) brings the original back; restoring it as a new machine gives a third guest with the file. Then
everything is deleted and nothing of it is left in the host's `hangar` pool.

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
    libvirtd_answers,
    local_host,
    publishing_to,
    shared_database,
    ssh,
    ssh_key,
    wait_for_ssh,
)

pytestmark = pytest.mark.slow

ORIGINAL = "written before the backup"
WRITE = (
    "mke2fs -q /dev/vda && mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d"
    f" && echo '{ORIGINAL}' > /mnt/d/hello.txt && sync && umount /mnt/d"
)
SPOIL = "mount -t ext4 /dev/vda /mnt/d && echo 'spoiled' > /mnt/d/hello.txt && sync && umount /mnt/d"
READ = "mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d && cat /mnt/d/hello.txt && umount /mnt/d"


def test_a_real_guests_disk_is_snapshotted_made_an_image_backed_up_and_restored(
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
    files: list[str] = []
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
            flavor = Flavor.objects.create(name="it.bak", vcpus=1, ram_mib=192, disk_gib=1, monthly_price=Decimal("1"))
            membership = MembershipFactory(role=Role.OWNER)
            secret = api_token_create(membership=membership, name="it", scope=ApiToken.Scope.READ_WRITE)[1]
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

            def call(method: str, url: str, body: dict | None = None, *, expect: int) -> dict:
                response = getattr(api, method)(f"/api/v1/{url}", body, format="json")
                assert response.status_code == expect, (method, url, response.status_code, response.content)
                return response.json() if response.content else {}

            def settled(kind: str, pk: str, state: str, *, what: str, timeout: float = 180) -> dict:
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
                    raise AssertionError(f"{command!r} failed: {result.stdout!r} {result.stderr!r}")
                return result.stdout.decode().strip()

            key = call(
                "post", "ssh-keys/", {"name": "it", "public_key": ssh_key.with_suffix(".pub").read_text()}, expect=201
            )

            def launch(name: str, image_id: str) -> str:
                body = {"name": name, "flavor": str(flavor.pk), "image": image_id, "ssh_keys": [key["id"]]}
                machine = call("post", "instances/", body, expect=202)["id"]
                machines.append(machine)
                address = settled("instances", machine, "running", what=f"{name}'s build")["private_ip"]
                wait_for_ssh(ssh_key, address, timeout=120)
                return address

            # A guest with a file on its disk.
            at = time.monotonic()
            first = launch("it-bak-a", str(image.pk))
            networks.extend(
                str(pk) for pk in Network.objects.filter(tenant=membership.tenant).values_list("pk", flat=True)
            )
            on(first, WRITE)
            at = step("a guest up, a file on its disk", at)

            # Its disk snapshotted while it runs, the snapshot made an image, a guest launched from the image.
            snapshot = call("post", f"instances/{machines[0]}/snapshot/", {"name": "it-disk"}, expect=202)
            files.append(f"hangar-snap-{snapshot['id']}")
            assert snapshot["crash_consistent"] is True
            settled("snapshots", snapshot["id"], "available", what="the disk's snapshot")
            made = call("post", "images/", {"name": "it-golden", "snapshot": snapshot["id"]}, expect=202)
            files.append(f"hangar-image-{made['id']}")
            settled("images", made["id"], "available", what="the private image")
            second = launch("it-bak-from-image", made["id"])
            assert on(second, READ) == ORIGINAL
            at = step("live snapshot → private image → a guest from it has the file", at)

            # Backups on, one made; the file spoiled; the backup restored over the disk brings it back.
            call("put", f"instances/{machines[0]}/backup-policy/", {"enabled": True, "hour": 4}, expect=200)
            backup = call("post", "backups/", {"instance": machines[0]}, expect=202)
            files.append(f"hangar-backup-{backup['id']}")
            settled("backups", backup["id"], "available", what="the backup")
            on(first, SPOIL)
            assert on(first, READ) == "spoiled"
            body = {"mode": "overwrite", "confirm_name": "it-bak-a"}
            assert call("post", f"backups/{backup['id']}/restore/", body, expect=202)["state"] == "restoring"
            settled("instances", machines[0], "running", what="the restore over the disk", timeout=240)
            wait_for_ssh(ssh_key, first, timeout=120)
            assert on(first, READ) == ORIGINAL
            at = step("backup → file spoiled → restored over the disk → file back", at)

            # The backup restored as a new machine: a third guest with the file.
            restored = call(
                "post",
                f"backups/{backup['id']}/restore/",
                {"mode": "new", "name": "it-bak-new", "ssh_keys": [key["id"]]},
                expect=202,
            )
            machines.append(restored["id"])
            third = settled("instances", restored["id"], "running", what="the restored machine")["private_ip"]
            wait_for_ssh(ssh_key, third, timeout=120)
            assert on(third, READ) == ORIGINAL
            at = step("backup → a new machine has the file", at)

            # Everything deleted (the first machine's backups with it): nothing left in the pool.
            call("delete", f"instances/{machines[1]}/", expect=202)
            settled("instances", machines[1], "deleted", what="the image's machine's deletion")
            call("delete", f"images/{made['id']}/", expect=202)
            call("delete", f"snapshots/{snapshot['id']}/", expect=202)
            api_delete = api.delete(f"/api/v1/instances/{machines[0]}/?delete_backups=true")
            assert api_delete.status_code == 202, api_delete.content
            call("delete", f"instances/{machines[2]}/", expect=202)
            settled("images", made["id"], "deleted", what="the image's deletion")
            settled("snapshots", snapshot["id"], "deleted", what="the snapshot's deletion")
            settled("backups", backup["id"], "deleted", what="the backup's deletion")
            for machine in machines:
                settled("instances", machine, "deleted", what="a machine's deletion")
            conn = libvirt.open(URI)
            try:
                pool = conn.storagePoolLookupByName("hangar")
                pool.refresh(0)
                left = [name for name in pool.listVolumes() if any(pk in name for pk in [*machines, *files])]
                assert left == [], left
            finally:
                conn.close()
            step("everything deleted → nothing left in the pool", at)
    finally:
        worker.stop()
        if libvirtd_answers():
            for machine in machines:
                _remove_domain(machine)
            _remove_files(files)
            for network in networks:
                _remove_network(network)
        timings["total"] = time.monotonic() - started
        print("\nlibvirt backup timings: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in timings.items()))


def _remove_files(names: list[str]) -> None:
    """Leave the pool clean even when the test failed half-way."""
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    driver = LibvirtDriver(Host(name="cleanup", driver="libvirt", uri=URI, vcpus=1, ram_mib=256, disk_gib=1))
    for name in names:
        driver.volume_delete(name)
