"""The cards on the dashboard's home page."""

from django.urls import reverse

from tenants.models import Membership, Tenant
from tenants.selectors import tenant_pending_invitations


def _card(label: str, value, *, url: str, sub: str = "", percent: float | None = None) -> dict:
    return {"label": label, "value": value, "url": url, "sub": sub, "percent": percent}


def tenant_summary(*, tenant: Tenant, membership: Membership) -> dict:
    pending = tenant_pending_invitations(tenant=tenant).count()
    cards = [
        _card(
            "Team",
            Membership.objects.for_tenant(tenant).count(),
            url=reverse("team"),
            sub=f"{pending} invitation{'s' if pending != 1 else ''} pending" if pending else "members",
        ),
    ]
    return {"cards": cards}
