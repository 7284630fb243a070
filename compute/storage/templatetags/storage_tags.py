"""What a machine's page and its delete confirmation show of storage, without compute's views knowing about it."""

from django import template

from compute.storage import selectors
from compute.storage.models import MAX_VOLUMES_PER_INSTANCE
from compute.storage.selectors import instance_volumes

register = template.Library()


@register.inclusion_tag("storage/partials/instance_disks.html", takes_context=True)
def instance_disks(context, instance):
    """The machine's disks: its boot disk, then its volumes in device order (with detach), and what can be
    attached to it."""
    volumes, available = selectors.instance_disks(instance=instance)
    can = context.get("can", {})
    takes_more = instance.state in ("running", "stopped") and len(volumes) < MAX_VOLUMES_PER_INSTANCE
    return {
        "instance": instance,
        "volumes": volumes,
        "attachable": available if can.get("change_resources") and takes_more else [],
        "can": can,
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
        "full": len(volumes) >= MAX_VOLUMES_PER_INSTANCE,
        "max_volumes": MAX_VOLUMES_PER_INSTANCE,
    }


@register.simple_tag
def volumes_kept_note(instance) -> str:
    """The sentence a machine's delete confirmation adds when volumes are attached to it."""
    names = [volume.name for volume in instance_volumes(instance=instance)]
    if not names:
        return ""
    listed = ", ".join(names)
    return f"Its volume{'s' if len(names) > 1 else ''} {listed} {'are' if len(names) > 1 else 'is'} detached and kept."
