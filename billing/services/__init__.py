"""Every change to billing state goes through these functions (one module per concern, re-exported here)."""

from billing.services.accounts import (
    account_check,
    accounts_check,
    available_credit_cents,
    billing_details_update,
    billing_terms_update,
    credit_topup,
    tenant_hold,
    tenant_resume,
    tenant_suspend,
)
from billing.services.budgets import BUDGET_THRESHOLDS, budget_check, budget_set, budgets_check
from billing.services.events import account_event, account_notify
from billing.services.invoices import (
    credit_note_issue,
    invoice_finalize,
    invoice_mark_paid,
    invoice_render_documents,
    invoice_void,
    invoices_finalize_batch,
    invoices_finalize_due,
)
from billing.services.segments import (
    instance_segment_close,
    instance_segment_open,
    ipv4_segment_close,
    ipv4_segment_open,
    segment_close,
    segment_open,
    volume_segment_close,
    volume_segment_open,
)

__all__ = [
    "BUDGET_THRESHOLDS",
    "account_check",
    "account_event",
    "account_notify",
    "accounts_check",
    "available_credit_cents",
    "billing_details_update",
    "billing_terms_update",
    "budget_check",
    "budget_set",
    "budgets_check",
    "credit_note_issue",
    "credit_topup",
    "instance_segment_close",
    "instance_segment_open",
    "invoice_finalize",
    "invoice_mark_paid",
    "invoice_render_documents",
    "invoice_void",
    "invoices_finalize_batch",
    "invoices_finalize_due",
    "ipv4_segment_close",
    "ipv4_segment_open",
    "segment_close",
    "segment_open",
    "tenant_hold",
    "tenant_resume",
    "tenant_suspend",
    "volume_segment_close",
    "volume_segment_open",
]
