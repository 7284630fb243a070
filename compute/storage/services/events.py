"""The organisation's storage log: the one function that writes it."""

from compute.storage.models import Snapshot, StorageEvent, Volume
from tenants.models import ActivityEntry, EventResult
from tenants.services import activity_from_event


def storage_event(
    *,
    tenant_id,
    action: str,
    volume: Volume | None = None,
    snapshot: Snapshot | None = None,
    other=None,
    other_type: str = "",
    message: str = "",
    actor=None,
    result: str = EventResult.SUCCEEDED,
    at=None,
) -> StorageEvent:
    """Records a change to a volume or a snapshot — or to `other`, a backup, a machine's backup schedule or a
    private image, of activity type `other_type` — (who, what, the outcome); what a person asked for (or was
    refused) also goes to the organisation's activity log."""
    subject = volume if volume is not None else snapshot if snapshot is not None else other
    extra = {"created_at": at} if at is not None else {}
    event = StorageEvent.objects.create(
        tenant_id=tenant_id,
        action=action,
        subject=subject.name[:120],
        volume=volume,
        snapshot=snapshot,
        message=message,
        actor=actor,
        result=result,
        **extra,
    )
    if actor is not None or result == EventResult.REFUSED:
        resource_type = ActivityEntry.ResourceType.VOLUME if volume is not None else ActivityEntry.ResourceType.SNAPSHOT
        resource_type = other_type if other is not None else resource_type
        activity_from_event(event, resource_type=resource_type, resource_id=subject.pk, resource_name=subject.name)
    return event


def item_event(
    item, action: str, result: str = EventResult.SUCCEEDED, *, user=None, message: str = "", at=None, other_type=""
) -> StorageEvent:
    """storage_event about one item: a volume or a snapshot, or (of `other_type`) a backup, a machine's backup
    schedule or a private image."""
    if other_type:
        subject = {"other": item, "other_type": other_type}
    else:
        subject = {"volume": item} if isinstance(item, Volume) else {"snapshot": item}
    return storage_event(
        tenant_id=item.tenant_id, action=action, **subject, message=message, actor=user, result=result, at=at
    )
