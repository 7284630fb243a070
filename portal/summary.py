"""The cards on the dashboard's home page."""

from django.urls import reverse

from tenants.models import Membership, Tenant
from tenants.roles import Permission
from tenants.selectors import tenant_members, tenant_pending_invitations


def _card(label: str, value, *, url: str, sub: str = "", percent: float | None = None) -> dict:
    return {"label": label, "value": value, "url": url, "sub": sub, "percent": percent}


def tenant_summary(*, tenant: Tenant, membership: Membership) -> dict:
    pending = tenant_pending_invitations(tenant=tenant).count()
    cards = [
        _card(
            "Team",
            tenant_members(tenant=tenant).count(),
            url=reverse("team"),
            sub=f"{pending} invitation{'s' if pending != 1 else ''} pending" if pending else "members",
        ),
    ]
    compute_cards, counts = _compute_cards(tenant)
    cards += compute_cards
    if membership.has(Permission.VIEW_BILLING):
        from billing.summary import billing_card

        cards.append(billing_card(tenant=tenant))
    started = None if counts["running"] else _getting_started(tenant, counts, verified=membership.user.email_verified)
    return {"cards": cards, "getting_started": started}


def _getting_started(tenant: Tenant, counts: dict, *, verified: bool) -> dict:
    """The first-run steps shown until the organisation has a machine running: confirm the e-mail address (keys and
    launches wait for it), add a key, launch, connect."""
    from compute.selectors import instance_list, sshkey_list

    has_key = sshkey_list(tenant=tenant).exists()
    launching = instance_list(tenant=tenant).order_by("-created_at").first() if counts["total"] else None
    if not verified:
        current = "verify"
    elif launching:
        current = "connect"
    else:
        current = "launch" if has_key else "key"
    return {
        "verified": verified,
        "has_key": has_key,
        "launched": launching is not None,
        "launching": launching,
        "current": current,
    }


def _compute_cards(tenant: Tenant) -> tuple[list[dict], dict]:
    from compute.selectors import instance_counts, quota_usage

    counts = instance_counts(tenant=tenant)
    quota = quota_usage(tenant=tenant)
    url = reverse("compute:instance-list")
    vcpus, ram = quota["vcpus"], quota["ram_mib"]
    return [
        _card("Instances", f"{counts['running']} / {counts['total']}", url=url, sub="running / total"),
        _card("vCPUs", f"{vcpus['used']} / {vcpus['limit']}", url=url, sub="of your quota", percent=vcpus["percent"]),
        _card(
            "RAM",
            f"{ram['used'] // 1024} / {ram['limit'] // 1024} GiB",
            url=url,
            sub="of your quota",
            percent=ram["percent"],
        ),
    ], counts
