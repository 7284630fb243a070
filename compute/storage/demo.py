"""The demo organisation's storage (`manage.py seed_demo`): a data volume on its database server, a spare volume, a
snapshot taken before an upgrade, and nightly backups of the database server with one backup made. Everything goes
through the real services, and the work runs here in-line on the simulated hosts (the worker's copies of the same
messages find nothing left to do)."""

from __future__ import annotations

from compute.models import Instance, InstanceState
from compute.storage import services
from compute.storage.models import StorageTask, Volume
from compute.storage.services.backup_work import backup_task_perform
from compute.storage.services.backups import backup_create, backups_enable

DATA_VOLUME = ("db-data", 100)
SPARE_VOLUME = ("scratch", 20)
SNAPSHOT = "db-data-before-upgrade"
DATABASE_SERVER = "db-1"
BACKUP_HOUR = 3


def seed(*, tenant, stdout) -> None:
    """Once per organisation (one that ever had volumes is left alone), after the demo machines and their billing
    history: the storage is this month's, billed from today."""
    if Volume.objects.filter(tenant=tenant).exists():
        stdout.write("Storage: the demo volumes are in place.")
        return
    server = Instance.objects.filter(tenant=tenant, name=DATABASE_SERVER, state=InstanceState.RUNNING).first()
    if server is None:
        stdout.write("Storage: no running demo database server; no demo volumes.")
        return
    owner = tenant.memberships.filter(role="owner").select_related("user").first().user

    data = _volume(tenant=tenant, owner=owner, name=DATA_VOLUME[0], size_gib=DATA_VOLUME[1])
    services.volume_attach(volume=data, instance=server, user=owner)
    services.storage_task_perform(kind="volume", pk=str(data.pk), task=StorageTask.ATTACH)
    _volume(tenant=tenant, owner=owner, name=SPARE_VOLUME[0], size_gib=SPARE_VOLUME[1])

    snapshot = services.snapshot_create(volume=Volume.objects.get(pk=data.pk), user=owner, name=SNAPSHOT)
    services.storage_task_perform(kind="snapshot", pk=str(snapshot.pk), task=StorageTask.CREATE)

    server = Instance.objects.get(pk=server.pk)
    backups_enable(instance=server, user=owner, hour=BACKUP_HOUR)
    backup = backup_create(instance=server, user=owner)
    backup_task_perform(backup_id=str(backup.pk), task=StorageTask.CREATE)
    stdout.write(
        f"Storage: {DATA_VOLUME[0]} attached to {DATABASE_SERVER}, {SPARE_VOLUME[0]}, the snapshot {SNAPSHOT}, "
        f"and nightly backups of {DATABASE_SERVER} at {BACKUP_HOUR:02d}:00 UTC."
    )


def _volume(*, tenant, owner, name: str, size_gib: int) -> Volume:
    volume = services.volume_create(tenant=tenant, user=owner, name=name, size_gib=size_gib)
    services.storage_task_perform(kind="volume", pk=str(volume.pk), task=StorageTask.CREATE)
    return Volume.objects.get(pk=volume.pk)
