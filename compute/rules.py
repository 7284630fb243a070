"""The rules that decide whether a launch or a resize may happen, written once.

The services enforce them (raising the error) and the forms and pages preview them (showing its message), so a
size the launch form offers is one the service accepts, and a refusal reads the same everywhere.
"""

from compute.models import Flavor, Image, Instance
from portal.errors import InvalidRequest, Unprocessable
from tenants.models import Tenant

QUOTA_LABELS = {
    "instances": "instances",
    "vcpus": "vCPUs",
    "ram_mib": "RAM",
    "volume_gb": "GiB of volume storage",
    "volumes": "volumes",
    "public_ips": "public IPv4 addresses",
}
# Quotas counted in whole things: a refusal says the quota is used up rather than how much is left.
COUNTED = frozenset({"instances", "volumes", "public_ips"})


def size_label(mib: int) -> str:
    """RAM as people read it: whole GiB where it divides, MiB otherwise."""
    return f"{mib // 1024} GiB" if mib >= 1024 and mib % 1024 == 0 else f"{mib} MiB"


def gib_label(mib: int) -> str:
    """RAM in GiB, always (quota figures read like the sizes on the launch form): 1536 → "1.5 GiB"."""
    gib = f"{mib / 1024:.2f}".rstrip("0").rstrip(".")
    return f"{gib} GiB"


def _amount(resource: str, amount: int) -> str:
    if resource == "ram_mib":
        return f"{gib_label(amount)} of RAM"
    return f"{amount} {QUOTA_LABELS[resource]}"


def quota_refusal(*, usage: dict[str, dict[str, int]], requested: dict[str, int]) -> Unprocessable | None:
    """Why `requested` (more instances, vCPUs, RAM, public IPs) does not fit the quota headroom in `usage`, or None.

    `usage` has the shape of compute.selectors.quota_usage(): per resource its "used" and "limit".
    """
    for resource, amount in requested.items():
        if amount <= 0:
            continue
        used, limit = usage[resource]["used"], usage[resource]["limit"]
        if used + amount > limit:
            free = max(limit - used, 0)
            if resource in COUNTED:
                message = f"Your quota of {limit} {QUOTA_LABELS[resource]} is used up."
            else:
                left = (
                    gib_label(free)
                    if resource == "ram_mib"
                    else f"{free} GiB"
                    if resource == "volume_gb"
                    else str(free)
                )
                message = f"Needs {_amount(resource, amount)}; {left} left in your quota."
            return Unprocessable(
                message,
                code="quota_exceeded",
                details={"resource": resource, "limit": limit, "in_use": used, "requested": amount},
            )
    return None


def image_fit_refusal(*, image: Image, flavor: Flavor) -> InvalidRequest | None:
    """Why `flavor` is too small for `image` (its minimum disk and RAM), or None."""
    if image.min_disk_gib > flavor.disk_gib or image.min_ram_mib > flavor.ram_mib:
        return InvalidRequest(
            f"{image.name} needs at least {image.min_disk_gib} GiB of disk and {size_label(image.min_ram_mib)} of "
            f"RAM; {flavor.name} has {flavor.disk_gib} GiB and {size_label(flavor.ram_mib)}. Pick a larger size.",
            code="image_too_large",
            details={"field": "flavor"},
        )
    return None


def resize_refusal(*, instance: Instance, flavor: Flavor) -> InvalidRequest | None:
    """Why `instance` cannot move to `flavor` (apart from its state, quota and host room), or None."""
    current = instance.flavor
    if flavor.pk == current.pk:
        return InvalidRequest(f"{instance.name} already is {current.name}.", code="same_flavor")
    if flavor.disk_gib < current.disk_gib:
        return InvalidRequest(
            f"Disks cannot shrink: {current.name} has {current.disk_gib} GiB, {flavor.name} only "
            f"{flavor.disk_gib} GiB.",
            code="disk_shrink",
            details={"field": "flavor"},
        )
    if instance.image.min_ram_mib > flavor.ram_mib:
        return InvalidRequest(
            f"{instance.image.name} needs at least {size_label(instance.image.min_ram_mib)} of RAM.",
            code="image_too_large",
            details={"field": "flavor"},
        )
    return None


def launch_quota_request(*, flavor: Flavor, public_ip: bool = False) -> dict[str, int]:
    """What launching one machine of `flavor` (with a new public address or not) adds to the quota."""
    return {"instances": 1, "vcpus": flavor.vcpus, "ram_mib": flavor.ram_mib, "public_ips": int(public_ip)}


def resize_quota_request(*, current: Flavor, flavor: Flavor) -> dict[str, int]:
    """What a resize adds to the quota: only growth counts."""
    return {"vcpus": flavor.vcpus - current.vcpus, "ram_mib": flavor.ram_mib - current.ram_mib}


def standing_refusal(*, tenant: Tenant, what: str) -> Unprocessable | None:
    """Why a tenant on hold or suspended may not take on new spending (`what`: "no machines can be launched")."""
    if tenant.accepts_new_resources:
        return None
    return Unprocessable(
        f"{tenant.name} is {tenant.get_status_display().lower()}: {what} until the account is settled.",
        code="tenant_on_hold",
        details={"status": tenant.status},
    )
