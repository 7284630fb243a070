from django.db.models import QuerySet

from tenants.models import Invitation, Membership, Tenant


def tenant_members(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")


def tenant_pending_invitations(*, tenant: Tenant) -> QuerySet[Invitation]:
    return Invitation.objects.for_tenant(tenant).pending().select_related("invited_by").order_by("-created_at")
