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

import pytest

from tests.compute.real_guests import ssh

pytestmark = pytest.mark.slow

GIB = 1024**3
CONTENT = "kept on a hangar volume"
# Format (busybox mke2fs), mount, write, unmount: the data must be on the disk before it is detached.
WRITE = (
    "mke2fs -q /dev/vdb && mkdir -p /mnt/v && mount -t ext4 /dev/vdb /mnt/v"
    f" && echo '{CONTENT}' > /mnt/v/hello.txt && sync && umount /mnt/v"
)
READ = "mkdir -p /mnt/v && mount -t ext4 /dev/vdb /mnt/v && cat /mnt/v/hello.txt"


def test_a_volume_moves_between_real_guests_grows_online_and_is_snapshotted(guest_api, ssh_key):
    with guest_api("storage", name="it.vol", vcpus=1, ram_mib=192, disk_gib=1) as api:
        call, settled, on = api.call, api.settled, api.on
        volumes: list[str] = []

        def has_vdb(address: str) -> bool:
            return ssh(ssh_key, address, "test -b /dev/vdb").returncode == 0

        def keep_clean(kind: str, pk: str) -> str:
            api.pool_files.append(f"hangar-{kind}-{pk}")
            return pk

        # Two guests, reached over SSH with the key.
        key = api.upload_key()
        machines = [api.launch(name, key=key) for name in ("it-vol-a", "it-vol-b")]
        first, second = (api.reachable(machine) for machine in machines)
        assert not has_vdb(first)
        api.step("two guests up, SSH")

        # A volume, attached to the running first guest: the disk appears inside; a file is written on it.
        created = call("post", "volumes/", {"name": "it-data", "size_gib": 1}, expect=202)
        volume = created["id"]
        volumes.append(keep_clean("vol", volume))
        settled("volumes", volume, "available", what="the volume's creation")
        attached = call("post", f"volumes/{volume}/attach/", {"instance": machines[0]}, expect=202)
        assert attached["attachment"]["device"] == "vdb"
        settled("volumes", volume, "in-use", what="the attach")
        api.worker.wait_for(lambda: has_vdb(first), what="/dev/vdb in the first guest", timeout=30)
        assert int(on(first, "cat /sys/block/vdb/size")) * 512 == GIB
        api.step("create → attach → /dev/vdb inside")
        on(first, WRITE)
        api.step("formatted, file written")

        # Detached: the disk leaves the first guest. Attached to the second: the file is there.
        call("post", f"volumes/{volume}/detach/", expect=202)
        settled("volumes", volume, "available", what="the detach")
        assert not has_vdb(first)
        call("post", f"volumes/{volume}/attach/", {"instance": machines[1]}, expect=202)
        settled("volumes", volume, "in-use", what="the attach to the second guest")
        api.worker.wait_for(lambda: has_vdb(second), what="/dev/vdb in the second guest", timeout=30)
        assert on(second, READ) == CONTENT
        api.step("detach → attach to the second guest → file read back")

        # Extended online: the running guest sees 2 GiB at once.
        call("post", f"volumes/{volume}/extend/", {"size_gib": 2}, expect=202)
        assert settled("volumes", volume, "in-use", what="the extend")["size_gib"] == 2
        api.worker.wait_for(
            lambda: on(second, "cat /sys/block/vdb/size") == str(2 * GIB // 512),
            what="the new size inside the guest",
            timeout=30,
        )
        api.step("extended online → 2 GiB inside")

        # A snapshot of the volume in use by the running guest, and a new volume from it: it has the file.
        on(second, "sync")
        snapshot = call("post", "snapshots/", {"name": "it-snap", "volume": volume}, expect=202)
        keep_clean("snap", snapshot["id"])
        assert snapshot["crash_consistent"] is True
        assert settled("snapshots", snapshot["id"], "available", what="the snapshot")["size_gib"] == 2
        copy = call("post", f"snapshots/{snapshot['id']}/volumes/", {"name": "it-copy"}, expect=202)
        volumes.append(keep_clean("vol", copy["id"]))
        assert settled("volumes", copy["id"], "available", what="the volume from the snapshot")["size_gib"] == 2
        call("post", f"volumes/{copy['id']}/attach/", {"instance": machines[0]}, expect=202)
        settled("volumes", copy["id"], "in-use", what="the copy's attach")
        api.worker.wait_for(lambda: has_vdb(first), what="the copy in the first guest", timeout=30)
        assert on(first, READ) == CONTENT
        api.step("snapshot of the running guest's disk → new volume → file there")

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
        assert api.pool_holds([*machines, *volumes, snapshot["id"]]) == []
        api.step("everything deleted → nothing left in the pool")
