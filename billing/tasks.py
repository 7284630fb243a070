"""Thin Celery adapters around billing services: they take ids, load, and call one service."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from billing import services
from billing.models import Invoice
from billing.pricing import month_start
from billing.services.metering import invoices_refresh


@shared_task(name="billing.tasks.meter", ignore_result=True, acks_late=True)
def meter() -> int:
    """Refreshes this month's drafts, and last month's while it is still a draft (its final hours)."""
    now = timezone.now()
    this_month = month_start(now)
    lines = invoices_refresh(period_start=this_month, as_of=now)
    previous = month_start(this_month - timedelta(days=1))
    if Invoice.objects.filter(period_start=previous, status=Invoice.Status.DRAFT).exists():
        lines += invoices_refresh(period_start=previous, as_of=now)
    return lines


@shared_task(name="billing.tasks.finalize_due", ignore_result=True, acks_late=True)
def finalize_due() -> int:
    return services.invoices_finalize_due()


@shared_task(name="billing.tasks.accounts_check", ignore_result=True, acks_late=True)
def accounts_check() -> int:
    return services.accounts_check()


@shared_task(name="billing.tasks.budgets_check", ignore_result=True, acks_late=True)
def budgets_check() -> int:
    return services.budgets_check()


@shared_task(
    name="billing.tasks.render_invoice_documents",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def render_invoice_documents(*, invoice_id: str) -> None:
    services.invoice_render_documents(invoice=Invoice(pk=invoice_id))


@shared_task(name="billing.tasks.send_account_email", ignore_result=True, acks_late=True)
def send_account_email(*, tenant_id: str, event_id: int, subject: str) -> None:
    services.account_notify(tenant_id=tenant_id, event_id=event_id, subject=subject)


@shared_task(name="billing.tasks.deliver_test_notification", ignore_result=True, acks_late=True)
def deliver_test_notification(*, payment_id: str, outcome: str, message: str = "") -> None:
    """The test provider's webhook delivery (a real provider posts to billing:payment-webhook instead)."""
    services.payment_notification_send(payment_id=payment_id, outcome=outcome, message=message)


@shared_task(name="billing.tasks.payments_expire", ignore_result=True, acks_late=True)
def payments_expire() -> int:
    return services.payments_expire_abandoned()
