"""The dashboard's navigation: one list, filtered by the current member's role."""

from dataclasses import dataclass

from django.urls import reverse

from tenants.roles import Permission


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    permission: str | None = None  # None: shown to anyone logged in, even without a tenant
    heading: str = ""
    # URL names (or namespaces) under which this item is highlighted
    sections: tuple[str, ...] = ()


NAV_ITEMS: list[NavItem] = [
    NavItem("Overview", "home", sections=("home",)),
    NavItem(
        "Instances",
        "compute:instance-list",
        Permission.VIEW_RESOURCES,
        heading="Compute",
        sections=("instance-list", "instance-launch", "instance-detail", "instance-delete"),
    ),
    NavItem("SSH keys", "compute:sshkey-list", Permission.VIEW_RESOURCES, sections=("sshkey-list",)),
    NavItem(
        "Networks",
        "network:network-list",
        Permission.VIEW_RESOURCES,
        heading="Networking",
        sections=("network-list", "network-detail"),
    ),
    NavItem("Public IPs", "network:ip-list", Permission.VIEW_RESOURCES, sections=("ip-list",)),
    NavItem(
        "Firewalls", "network:firewall-list", Permission.VIEW_RESOURCES, sections=("firewall-list", "firewall-detail")
    ),
    NavItem("Alerts", "monitoring:alert-list", Permission.VIEW_RESOURCES, sections=("monitoring",)),
    NavItem("Stacks", "stacks:stack-list", Permission.VIEW_RESOURCES, sections=("stacks",)),
    NavItem("Team", "team", Permission.VIEW_MEMBERS, heading="Organisation", sections=("team",)),
    NavItem("Settings", "tenant-settings", Permission.VIEW_MEMBERS, sections=("tenant-settings",)),
    NavItem("Activity", "activity", Permission.VIEW_ACTIVITY, sections=("activity",)),
    NavItem("Billing", "billing:overview", Permission.VIEW_BILLING, sections=("billing",)),
    NavItem("API tokens", "api-tokens", Permission.VIEW_RESOURCES, sections=("api-tokens", "api-token-revoke")),
]


def nav_items(request) -> list[dict]:
    membership = getattr(request, "membership", None)
    match = request.resolver_match
    current = {match.url_name, match.namespace} if match else set()
    items = []
    for item in NAV_ITEMS:
        if item.permission and not (membership and membership.has(item.permission)):
            continue
        items.append(
            {
                "label": item.label,
                "url": reverse(item.url_name),
                "heading": item.heading,
                "active": bool(current & set(item.sections or (item.url_name,))),
            }
        )
    return items
