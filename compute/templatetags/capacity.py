"""{% capacity_bar used physical allocatable unit %}: how full a host is, for the admin and the operations overview."""

from django import template

register = template.Library()


@register.inclusion_tag("admin/compute/capacity_bar.html")
def capacity_bar(used: int, physical: int, allocatable: int, unit: str = "") -> dict:
    """What a host holds against what it may hold after overcommit, with a mark where the physical size ends."""
    percent = min(100, round(used * 100 / allocatable)) if allocatable else 100
    return {
        "used": used,
        "free": allocatable - used,
        "physical": physical,
        "allocatable": allocatable,
        "percent": percent,
        "level": "full" if used >= allocatable else "high" if percent >= 80 else "ok",
        "physical_at": round(physical * 100 / allocatable) if allocatable and physical < allocatable else None,
        "unit": unit,
    }
