"""The organisation's activity log: the one function that writes it, and its retention.

Every app's event writer (tenant_event here, compute's instance events, billing's account events) calls
`activity_from_event` for the entries people care about, so each change appears once, with who made it (a
member, one of their API tokens, an operator, or Hangar itself), through which door and from which address.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from tenants import requestcontext
from tenants.models import ActivityEntry, Event, EventResult


def activity_record(**entry) -> ActivityEntry:
    """Records one entry (activity_entry()'s arguments)."""
    record = activity_entry(**entry)
    record.save(force_insert=True)
    return record


def activity_entry(
    *,
    tenant_id,
    resource_type: str,
    action: str,
    action_label: str = "",
    resource_id="",
    resource_name: str = "",
    outcome: str = EventResult.SUCCEEDED,
    message: str = "",
    actor=None,
    at: datetime | None = None,
) -> ActivityEntry:
    """One entry, not yet written; the channel, address and API token come from the request being handled, if any.

    With no actor the system acted (a worker, the beat, a consequence of someone else's change): channel
    "system", no address.
    """
    context = requestcontext.current() if actor is not None else None
    token = context.api_token if context is not None else None
    if token is not None and token.user_id != actor.pk:
        token = None
    return ActivityEntry(
        tenant_id=tenant_id,
        created_at=at or timezone.now(),
        actor=actor,
        actor_email=actor.email if actor is not None else "",
        token_id=token.pk if token is not None else None,
        token_name=token.name if token is not None else "",
        channel=context.channel if context is not None else ActivityEntry.Channel.SYSTEM,
        ip_address=context.ip_address if context is not None else None,
        resource_type=resource_type,
        resource_id=str(resource_id or "")[:64],
        resource_name=(resource_name or "")[:200],
        action=action,
        action_label=(action_label or action.replace("_", " ").capitalize())[:100],
        outcome=outcome,
        message=message,
    )


def activity_from_event(event: Event, *, resource_type: str, resource_id="", resource_name: str = "") -> ActivityEntry:
    """Records the activity entry for a row of an app's own event log (activity_entry_for_event())."""
    record = activity_entry_for_event(
        event, resource_type=resource_type, resource_id=resource_id, resource_name=resource_name
    )
    record.save(force_insert=True)
    return record


def activity_entry_for_event(
    event: Event, *, resource_type: str, resource_id="", resource_name: str = ""
) -> ActivityEntry:
    """The activity entry for a row of an app's own event log, not yet written: same actor, action, outcome, message
    and time."""
    return activity_entry(
        tenant_id=event.tenant_id,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        action=event.action,
        action_label=event.get_action_display(),
        outcome=event.result,
        message=event.message,
        actor=event.actor,
        at=event.created_at,
    )


def activity_purge(*, now: datetime | None = None) -> int:
    """Deletes entries older than ACTIVITY_RETENTION_DAYS; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ACTIVITY_RETENTION_DAYS)
    deleted, _ = ActivityEntry.objects.filter(created_at__lt=cutoff).delete()
    return deleted
