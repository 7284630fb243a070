"""What a machine's page and its delete confirmation show of its backups and disk snapshots, without compute's views
knowing about them."""

from django import template

from compute import lifecycle
from compute.prices import monthly_display, resource_price
from compute.storage import backup_selectors as selectors
from compute.storage.backup_forms import HOURS
from compute.storage.backup_models import BackupState
from compute.storage.services.boot_snapshots import CRASH_CONSISTENT_WARNING

register = template.Library()


@register.inclusion_tag("storage/partials/instance_backups.html", takes_context=True)
def instance_backups(context, instance):
    """The machine's backup schedule (on/off, hour, price), its backups (restore, delete) and the snapshot of its
    disk."""
    backups = selectors.instance_backups(instance=instance)
    policy = selectors.backup_policy_view(instance=instance)
    return {
        "instance": instance,
        "policy": policy,
        "backups": backups,
        # The machine's own minute of each hour: what it will really be.
        "hours": [(hour, f"{hour:02d}:{policy['minute']:02d} UTC") for hour, _ in HOURS],
        "polling": any(backup.is_transitional for backup in backups),
        "warning": CRASH_CONSISTENT_WARNING,
        "snapshot_monthly": monthly_display(resource_price(lifecycle.SNAPSHOT) * instance.flavor.disk_gib),
        "can": context.get("can", {}),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
        "currency": context.get("currency") or "",
    }


@register.inclusion_tag("storage/partials/backups_delete_choice.html")
def backups_delete_choice(instance):
    """On a machine's delete confirmation: keep its backups (the default) or delete them too."""
    kept = [backup for backup in selectors.instance_backups(instance=instance) if backup.state == BackupState.AVAILABLE]
    return {"instance": instance, "count": len(kept)}
