"""A tenant's private images: made from a snapshot (a copy of it in the same host's pool), launched like any image
(on the host that keeps the file), deleted when no machine uses them. Billed per GiB-month while they exist."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import IMAGE_TASK_DEADLINE, DiskFormat, Image, ImageState, Instance
from compute.scheduler import place_storage
from compute.storage.models import Snapshot, SnapshotState, StorageEventAction
from compute.storage.services.common import insert_named
from compute.storage.services.events import item_event
from portal.errors import Conflict, InvalidRequest
from tenants.models import ActivityEntry, EventResult

IMAGE_RESOURCE = ActivityEntry.ResourceType.IMAGE


def _dispatch(task: str, image_id: str) -> None:
    from compute.storage.backup_tasks import enqueue_image

    try:
        enqueue_image(image_id=image_id, task=task)
    except Exception:  # the reconciler sends it again
        import logging

        logging.getLogger(__name__).exception("Could not enqueue %s of image %s", task, image_id)


def _enqueue(image: Image, task: str, now) -> None:
    image.task_enqueued_at = now
    image.task_deadline = now + IMAGE_TASK_DEADLINE
    image_id = str(image.pk)
    transaction.on_commit(lambda: _dispatch(task, image_id))


def _log(image: Image, action: str, result: str, **details) -> None:
    item_event(image, action, result, other_type=IMAGE_RESOURCE, **details)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("Give the image a name.", code="invalid_name", details={"field": "name"})
    if len(name) > 100 or any(ord(char) < 32 for char in name):
        raise InvalidRequest(
            "Use at most 100 printable characters for the name.", code="invalid_name", details={"field": "name"}
        )
    return name


def image_create(*, snapshot: Snapshot, user, name: str) -> Image:
    """A private image of the snapshot's organisation, copied from the snapshot into the same host's pool; it is
    `creating` until the copy is made, then launchable (on that host) and billed per GiB-month."""
    name = _clean_name(name)
    with transaction.atomic():
        locked = (
            Snapshot.objects.select_for_update(of=("self",))
            .select_related("source_instance__image")
            .get(pk=snapshot.pk)
        )
        if locked.state != SnapshotState.AVAILABLE or locked.host_id is None:
            raise Conflict(
                f"The snapshot {locked.name} is {locked.get_state_display().lower()}; only an available snapshot can "
                "become an image.",
                code="snapshot_busy",
                details={"state": locked.state},
            )
        place_storage(size_gib=locked.size_gib, region=locked.region, host=locked.host)  # its copy's room
        origin = locked.source_instance.image if locked.source_instance_id else None
        now = timezone.now()
        image = Image(
            tenant_id=locked.tenant_id,
            name=name,
            os=origin.os if origin else "Custom",
            version=origin.version if origin else locked.source_name,
            min_disk_gib=locked.size_gib,
            min_ram_mib=origin.min_ram_mib if origin else 256,
            disk_format=DiskFormat.QCOW2,
            # A machine that booted a kernel directly keeps doing so from its image; its disk comes from the copy.
            kernel_path=origin.kernel_path if origin else "",
            initrd_path=origin.initrd_path if origin else "",
            kernel_cmdline=origin.kernel_cmdline if origin else "",
            state=ImageState.CREATING,
            size_gib=locked.size_gib,
            host_id=locked.host_id,
            source_snapshot_id=locked.pk,
            source_name=locked.name,
            created_by=user,
            created_at=now,
        )
        _enqueue(image, "create", now)
        insert_named(image, what="an image")
        _log(image, StorageEventAction.IMAGE_CREATE, EventResult.REQUESTED, user=user, message=f"from {locked.name}")
    return image


def image_create_succeeded(*, image_id: str, size_gib: int) -> Image | None:
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or image.state != ImageState.CREATING:
            return None
        now = timezone.now()
        image.state = ImageState.AVAILABLE
        image.size_gib = size_gib or image.size_gib
        image.min_disk_gib = max(image.min_disk_gib, image.size_gib)
        image.task_enqueued_at = image.task_deadline = None
        image.save(update_fields=["state", "size_gib", "min_disk_gib", "task_enqueued_at", "task_deadline"])
        _log(image, StorageEventAction.IMAGE_CREATE, EventResult.SUCCEEDED, message=f"{image.size_gib} GiB", at=now)
        lifecycle.announce_billable(resource=image.billable(), at=now)
    return image


def image_task_failed(*, image_id: str, reason: str) -> Image | None:
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or image.state not in (ImageState.CREATING, ImageState.DELETING):
            return None
        image.state = ImageState.ERROR
        image.error_reason = reason[:2000]
        image.task_enqueued_at = image.task_deadline = None
        image.save(update_fields=["state", "error_reason", "task_enqueued_at", "task_deadline"])
        _log(image, StorageEventAction.IMAGE_ERROR, EventResult.FAILED, message=reason)
    return image


def image_users(*, image: Image) -> list[str]:
    """The names of the live machines launched from the image (their disks are made on its file)."""
    return list(Instance.objects.live().filter(image=image).order_by("name").values_list("name", flat=True))


def image_delete(*, image: Image, user) -> Image:
    """Deletes a private image no live machine uses (the refusal names them); billing stops now."""
    with transaction.atomic():
        locked = Image.objects.select_for_update().get(pk=image.pk)
        refusal = None
        if not locked.is_private:
            refusal = Conflict("Catalog images cannot be deleted.", code="image_public")
        elif locked.state not in (ImageState.AVAILABLE, ImageState.ERROR):
            refusal = Conflict(
                f"{locked.name} is {locked.get_state_display().lower()}; only an available or failed image can be "
                "deleted.",
                code="image_busy",
                details={"state": locked.state},
            )
        elif users := image_users(image=locked):
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            refusal = Conflict(
                f"{locked.name} is in use by {shown}; delete {'it' if len(users) == 1 else 'them'} first.",
                code="image_in_use",
                details={"instances": users},
            )
        if refusal is None:
            now = timezone.now()
            if locked.state == ImageState.AVAILABLE:
                lifecycle.announce_ended(resource_type=lifecycle.IMAGE, resource_id=locked.pk, at=now)
            locked.state = ImageState.DELETING
            locked.active = False
            locked.error_reason = ""
            _enqueue(locked, "delete", now)
            locked.save(update_fields=["state", "active", "error_reason", "task_enqueued_at", "task_deadline"])
            _log(locked, StorageEventAction.IMAGE_DELETE, EventResult.REQUESTED, user=user, at=now)
    if refusal is not None:
        if locked.is_private:
            _log(locked, StorageEventAction.IMAGE_DELETE, EventResult.REFUSED, user=user, message=refusal.message)
        raise refusal
    return locked


def image_delete_succeeded(*, image_id: str) -> Image | None:
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or image.state != ImageState.DELETING:
            return None
        now = timezone.now()
        image.state = ImageState.DELETED
        image.deleted_at = now
        image.task_enqueued_at = image.task_deadline = None
        image.save(update_fields=["state", "deleted_at", "task_enqueued_at", "task_deadline"])
        _log(image, StorageEventAction.IMAGE_DELETE, EventResult.SUCCEEDED, at=now)
    return image


# --- the reconciler's writes ------------------------------------------------------------------------------------


def image_task_requeue(*, image_id: str, seen_enqueued_at) -> bool:
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or not image.is_transitional or image.task_enqueued_at != seen_enqueued_at:
            return False
        image.task_enqueued_at = timezone.now()
        image.save(update_fields=["task_enqueued_at"])
        task = "create" if image.state == ImageState.CREATING else "delete"
        transaction.on_commit(lambda: _dispatch(task, image_id))
    return True


def image_vanished(*, image_id: str, host_name: str) -> bool:
    """An available private image whose file is gone: `error` (it cannot be launched) and no longer billed."""
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id, state=ImageState.AVAILABLE).first()
        if image is None:
            return False
        now = timezone.now()
        lifecycle.announce_ended(resource_type=lifecycle.IMAGE, resource_id=image.pk, at=now)
        image.state = ImageState.ERROR
        image.error_reason = f"Its file is gone from host {host_name}."
        image.save(update_fields=["state", "error_reason"])
        _log(image, StorageEventAction.IMAGE_ERROR, EventResult.FAILED, message=image.error_reason, at=now)
    return True
