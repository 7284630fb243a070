"""What the files in a host's storage pool hold, kept in the host's running disk total (Host.held_disk_gib).

Volumes, snapshots, backups and private images each keep one file of `size_gib` in the pool of their `host` until
they are deleted. The scheduler places machines and storage from the host's running totals
(compute.services.usage), so every save that moves such a file's host, state or size applies the difference to
those totals in the same transaction: the row as stored before the save against the row as saved. The hourly
repair (`usage_totals_repair`) recounts the same files through `compute.scheduler.usage_annotations()`.
"""

from __future__ import annotations

from django.db.models import F
from django.db.models.signals import post_delete, post_save, pre_save

from compute.models import Host, Image
from compute.storage.models import Backup, Snapshot, Volume

POOL_MODELS = (Volume, Snapshot, Backup, Image)
POOL_FIELDS = ("host_id", "state", "size_gib")
GONE = "deleted"


def _held(values: tuple | None) -> dict:
    """{host_id: GiB} that a row with these POOL_FIELDS values keeps in a pool."""
    if values is None:
        return {}
    host_id, state, size_gib = values
    return {} if host_id is None or state == GONE else {host_id: size_gib}


def _apply(before: dict, after: dict) -> None:
    for host_id in sorted(set(before) | set(after), key=str):
        delta = after.get(host_id, 0) - before.get(host_id, 0)
        if delta:
            Host.objects.filter(pk=host_id).update(held_disk_gib=F("held_disk_gib") + delta)


def _on_pre_save(sender, instance, raw: bool = False, update_fields=None, **_) -> None:
    if raw:
        return
    if update_fields is not None and not {name.removesuffix("_id") for name in update_fields} & {
        "host",
        "state",
        "size_gib",
    }:
        instance._pool_stored = "unchanged"
        return
    stored = None
    if not instance._state.adding:
        stored = sender.objects.filter(pk=instance.pk).values_list(*POOL_FIELDS).first()
    instance._pool_stored = stored


def _on_post_save(sender, instance, raw: bool = False, **_) -> None:
    stored = getattr(instance, "_pool_stored", "unchanged")
    instance._pool_stored = "unchanged"
    if raw or stored == "unchanged":
        return
    _apply(_held(stored), _held(tuple(getattr(instance, name) for name in POOL_FIELDS)))


def _on_post_delete(sender, instance, **_) -> None:
    _apply(_held(tuple(getattr(instance, name) for name in POOL_FIELDS)), {})


def subscribe() -> None:
    """Called once from StorageConfig.ready()."""
    for model in POOL_MODELS:
        key = f"pool.{model._meta.label_lower}"
        pre_save.connect(_on_pre_save, sender=model, dispatch_uid=f"{key}.pre_save")
        post_save.connect(_on_post_save, sender=model, dispatch_uid=f"{key}.post_save")
        post_delete.connect(_on_post_delete, sender=model, dispatch_uid=f"{key}.post_delete")
