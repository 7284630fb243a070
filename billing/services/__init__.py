"""Every change to billing state goes through these functions (one module per concern, re-exported here)."""

from billing.services.accounts import (
    account_check,
    accounts_check,
    available_credit_cents,
    billing_details_update,
    billing_terms_update,
    credit_topup,
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
from billing.services.lifecycle import (
    resource_billing_rename,
    resource_billing_reprice,
    resource_billing_start,
    resource_billing_stop,
)
from billing.services.payments import (
    payment_card_cancel,
    payment_card_confirm,
    payment_card_submit,
    payment_fail,
    payment_invoice_start,
    payment_notification_receive,
    payment_notification_send,
    payment_succeed,
    payment_topup_start,
    payments_expire_abandoned,
)
from billing.services.prices import flavor_price_set, resource_price_set
from billing.services.segments import segment_close, segment_open

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
    "flavor_price_set",
    "invoice_finalize",
    "invoice_mark_paid",
    "invoice_render_documents",
    "invoice_void",
    "invoices_finalize_batch",
    "invoices_finalize_due",
    "payment_card_cancel",
    "payment_card_confirm",
    "payment_card_submit",
    "payment_fail",
    "payment_invoice_start",
    "payment_notification_receive",
    "payment_notification_send",
    "payment_succeed",
    "payment_topup_start",
    "payments_expire_abandoned",
    "resource_billing_rename",
    "resource_billing_reprice",
    "resource_billing_start",
    "resource_billing_stop",
    "resource_price_set",
    "segment_close",
    "segment_open",
]
