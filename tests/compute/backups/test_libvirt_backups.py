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

import pytest

from tests.compute.real_guests import wait_for_ssh

pytestmark = pytest.mark.slow

ORIGINAL = "written before the backup"
WRITE = (
    "mke2fs -q /dev/vda && mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d"
    f" && echo '{ORIGINAL}' > /mnt/d/hello.txt && sync && umount /mnt/d"
)
SPOIL = "mount -t ext4 /dev/vda /mnt/d && echo 'spoiled' > /mnt/d/hello.txt && sync && umount /mnt/d"
READ = "mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d && cat /mnt/d/hello.txt && umount /mnt/d"


def test_a_real_guests_disk_is_snapshotted_made_an_image_backed_up_and_restored(guest_api, ssh_key):
    with guest_api("backup", name="it.bak", vcpus=1, ram_mib=192, disk_gib=1) as api:
        call, settled, on = api.call, api.settled, api.on
        key = api.upload_key()

        # A guest with a file on its disk.
        machines = [api.launch("it-bak-a", key=key)]
        first = api.reachable(machines[0])
        on(first, WRITE)
        api.step("a guest up, a file on its disk")

        # Its disk snapshotted while it runs, the snapshot made an image, a guest launched from the image.
        snapshot = call("post", f"instances/{machines[0]}/snapshot/", {"name": "it-disk"}, expect=202)
        api.pool_files.append(f"hangar-snap-{snapshot['id']}")
        assert snapshot["crash_consistent"] is True
        settled("snapshots", snapshot["id"], "available", what="the disk's snapshot")
        made = call("post", "images/", {"name": "it-golden", "snapshot": snapshot["id"]}, expect=202)
        api.pool_files.append(f"hangar-image-{made['id']}")
        settled("images", made["id"], "available", what="the private image")
        machines.append(api.launch("it-bak-from-image", key=key, image_id=made["id"]))
        second = api.reachable(machines[1])
        assert on(second, READ) == ORIGINAL
        api.step("live snapshot → private image → a guest from it has the file")

        # Backups on, one made; the file spoiled; the backup restored over the disk brings it back.
        call("put", f"instances/{machines[0]}/backup-policy/", {"enabled": True, "hour": 4}, expect=200)
        backup = call("post", "backups/", {"instance": machines[0]}, expect=202)
        api.pool_files.append(f"hangar-backup-{backup['id']}")
        settled("backups", backup["id"], "available", what="the backup")
        on(first, SPOIL)
        assert on(first, READ) == "spoiled"
        body = {"mode": "overwrite", "confirm_name": "it-bak-a"}
        assert call("post", f"backups/{backup['id']}/restore/", body, expect=202)["state"] == "restoring"
        settled("instances", machines[0], "running", what="the restore over the disk", timeout=240)
        wait_for_ssh(ssh_key, first, timeout=120)
        assert on(first, READ) == ORIGINAL
        api.step("backup → file spoiled → restored over the disk → file back")

        # The backup restored as a new machine: a third guest with the file.
        restored = call(
            "post",
            f"backups/{backup['id']}/restore/",
            {"mode": "new", "name": "it-bak-new", "ssh_keys": [key["id"]]},
            expect=202,
        )
        machines.append(restored["id"])
        api.machines.append(restored["id"])
        third = api.reachable(restored["id"])
        assert on(third, READ) == ORIGINAL
        api.step("backup → a new machine has the file")

        # Everything deleted (the first machine's backups with it): nothing left in the pool.
        call("delete", f"instances/{machines[1]}/", expect=202)
        settled("instances", machines[1], "deleted", what="the image's machine's deletion")
        call("delete", f"images/{made['id']}/", expect=202)
        call("delete", f"snapshots/{snapshot['id']}/", expect=202)
        call("delete", f"instances/{machines[0]}/?delete_backups=true", expect=202)
        call("delete", f"instances/{machines[2]}/", expect=202)
        settled("images", made["id"], "deleted", what="the image's deletion")
        settled("snapshots", snapshot["id"], "deleted", what="the snapshot's deletion")
        settled("backups", backup["id"], "deleted", what="the backup's deletion")
        for machine in machines:
            settled("instances", machine, "deleted", what="a machine's deletion")
        assert api.pool_holds([*machines, snapshot["id"], made["id"], backup["id"]]) == []
        api.step("everything deleted → nothing left in the pool")
