"""Reads of backups, backup schedules and private images, for the pages and the API (they take `tenant=`)."""

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, QuerySet

from compute import lifecycle
from compute.models import Image, ImageState, Instance, InstanceState
from compute.prices import monthly_display, resource_price
from compute.storage.backup_models import Backup, BackupPolicy, BackupState, backup_minute


def backup_share_percent() -> Decimal:
    """The share of a machine's price its backups cost, as billing prices it today."""
    return resource_price(lifecycle.BACKUP)


def backup_monthly_price(*, flavor, share: Decimal | None = None) -> Decimal:
    """What backups of a machine of `flavor` cost per month now (at `share` percent, else today's)."""
    share = backup_share_percent() if share is None else share
    return monthly_display((Decimal(flavor.monthly_price) * share / 100).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def backup_list(*, tenant) -> QuerySet[Backup]:
    """The organisation's backups that are not deleted, newest first."""
    return (
        Backup.objects.for_tenant(tenant)
        .exclude(state=BackupState.DELETED)
        .select_related("instance", "region")
        .order_by("-created_at", "id")
    )


def instance_backups(*, instance: Instance) -> list[Backup]:
    """The machine's backups, newest first; read once per instance object (its page asks twice: the card and the
    delete dialog)."""
    if not hasattr(instance, "_backups"):
        instance._backups = list(
            Backup.objects.filter(instance=instance).exclude(state=BackupState.DELETED).order_by("-created_at", "id")
        )
    return instance._backups


def backup_policy_of(*, instance: Instance) -> BackupPolicy | None:
    return BackupPolicy.objects.filter(instance=instance).first()


def backup_policy_view(*, instance: Instance) -> dict:
    """A machine's schedule as the API and the instance page show it (off, with the price, if it never had one)."""
    policy = backup_policy_of(instance=instance)
    enabled = policy is not None and policy.enabled
    share = backup_share_percent()
    return {
        "enabled": enabled,
        "hour": policy.hour if policy is not None else 3,
        "minute": policy.minute if policy is not None else backup_minute(instance.pk),
        "keep": policy.keep if policy is not None else 7,
        "next_run_at": policy.next_run_at if enabled else None,
        "monthly_price": backup_monthly_price(flavor=instance.flavor, share=share),
        "share_percent": share,
    }


def backup_summary(*, tenant) -> list[dict]:
    """Per machine with backups enabled or kept: its schedule and how many backups it has."""
    policies = (
        BackupPolicy.objects.for_tenant(tenant)
        .filter(Q(enabled=True) | Q(instance__backups__state=BackupState.AVAILABLE))
        .select_related("instance__flavor")
        .annotate(available=Count("instance__backups", filter=Q(instance__backups__state=BackupState.AVAILABLE)))
        .order_by("instance__name", "pk")
        .distinct()
    )
    return [{"policy": policy, "instance": policy.instance, "available": policy.available} for policy in policies]


def backups_restorable_instances(*, tenant) -> QuerySet[Instance]:
    return Instance.objects.for_tenant(tenant).filter(state__in=[InstanceState.RUNNING, InstanceState.STOPPED])


def private_image_list(*, tenant) -> QuerySet[Image]:
    """The organisation's private images that are not deleted, with how many live machines use each."""
    return (
        Image.objects.for_tenant(tenant)
        .exclude(state=ImageState.DELETED)
        .select_related("host__region")
        .annotate(machines=Count("instances", filter=~Q(instances__state=InstanceState.DELETED)))
        .order_by("name", "id")
    )


def private_image_monthly_price(*, size_gib: int) -> Decimal:
    return monthly_display(resource_price(lifecycle.IMAGE) * size_gib)
