"""The tenant's billing event log and its e-mails to owners and billing members."""

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from billing.models import AccountEvent
from billing.selectors import billing_contacts
from tenants.models import ActivityEntry
from tenants.services import activity_from_event

INVOICE_ACTIONS = {AccountEvent.Action.INVOICE, AccountEvent.Action.CREDIT_NOTE}


def account_event(
    *,
    tenant,
    action: str,
    message: str,
    actor=None,
    email_subject: str = "",
    activity: bool = True,
    result: str = AccountEvent.Result.SUCCEEDED,
) -> AccountEvent:
    """Records a step in the tenant's billing log; with a subject, e-mails it after the commit.

    The step also goes into the organisation's activity log unless `activity` is False: for notices that change
    nothing (budget alerts) and for standing changes, which the organisation's own log already records.
    """
    event = AccountEvent.objects.create(tenant=tenant, action=action, message=message, actor=actor, result=result)
    if activity:
        account_event_activity(event)
    if email_subject:
        from billing.tasks import send_account_email

        tenant_id, event_id = str(tenant.pk), event.pk
        transaction.on_commit(
            lambda: send_account_email.delay(tenant_id=tenant_id, event_id=event_id, subject=email_subject)
        )
    return event


def account_event_activity(event: AccountEvent) -> None:
    """The activity entry of a billing step: invoices and credit notes, or the billing settings and credit."""
    resource_type = (
        ActivityEntry.ResourceType.INVOICE if event.action in INVOICE_ACTIONS else ActivityEntry.ResourceType.BILLING
    )
    activity_from_event(event, resource_type=resource_type)


def account_notify(*, tenant_id, event_id: int, subject: str) -> int:
    """E-mails one account event to the tenant's owners and billing members; returns how many were sent to."""
    event = AccountEvent.objects.select_related("tenant").filter(pk=event_id, tenant_id=tenant_id).first()
    if event is None:
        return 0
    recipients = billing_contacts(tenant=event.tenant)
    if not recipients:
        return 0
    body = render_to_string(
        "billing/email/account_event.txt",
        {"event": event, "tenant": event.tenant, "site_url": settings.SITE_URL},
    )
    send_mail(f"[Hangar] {event.tenant.name}: {subject}", body, None, recipients)
    return len(recipients)
