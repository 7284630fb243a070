"""Labels of every tenant resource: the one service that changes them, recorded in the activity log."""

from __future__ import annotations

from django.db import models, transaction

from tenants.labels import labels_change_message, labels_checked
from tenants.models import ActivityEntry
from tenants.services import activity_record

# The activity log's kind of thing for each labelled model ("app_label.model"); nested apps add theirs.
RESOURCE_TYPES: dict[str, str] = {
    "compute.instance": ActivityEntry.ResourceType.INSTANCE,
    "compute.sshkey": ActivityEntry.ResourceType.SSH_KEY,
    "network.network": ActivityEntry.ResourceType.NETWORK,
    "network.firewall": ActivityEntry.ResourceType.FIREWALL,
    "network.publicip": ActivityEntry.ResourceType.PUBLIC_IP,
}


def resource_labels_set(*, resource: models.Model, user, labels: dict[str, str]) -> models.Model:
    """Replaces the labels of one tenant resource (an instance, SSH key, network, firewall, public address, …); the
    change goes to the activity log with what was added, changed and removed. The same labels change nothing."""
    labels = labels_checked(labels)
    model = type(resource)
    resource_type = RESOURCE_TYPES[model._meta.label_lower]
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=resource.pk)
        before = dict(locked.labels or {})
        if before == labels:
            return locked
        locked.labels = labels
        locked.save(update_fields=["labels"])
        activity_record(
            tenant_id=locked.tenant_id,
            resource_type=resource_type,
            resource_id=locked.pk,
            resource_name=str(getattr(locked, "name", "") or locked),
            action="labels",
            action_label="Labels changed",
            actor=user,
            message=labels_change_message(before, labels),
        )
    return locked
