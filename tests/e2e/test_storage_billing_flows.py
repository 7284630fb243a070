"""Storage and billing in Chromium against the whole stack (web, a separate worker and beat): a volume from its
price to its deletion, attached to a running machine on the way and snapshotted; backups turned on; and credit
topped up with the test provider's cards, one of which asks for 3-D Secure.

Every page state reached is checked by `check_page` (axe-core, no sideways scroll at 390 px, no browser errors).
"""

import re

import pytest

from tests.e2e.pages import add_key_on_launch_form, check_page, sign_up, wait_for_badge
from tests.e2e.test_dashboard_flows import _confirm_email, _email

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _launch_running_machine(page, name: str) -> str:
    """Launches a machine through the form (adding a key inline) and waits until it runs; returns its page's URL."""
    page.goto("/instances/launch/")
    page.fill("#id_name", name)
    add_key_on_launch_form(page)
    page.get_by_role("button", name="Launch instance").click()
    page.wait_for_url(re.compile(r"/instances/[0-9a-f-]{36}/$"))
    wait_for_badge(page, "Running")
    return page.url


def _accept_confirm(page) -> None:
    """Presses the confirming button of the page's own confirm dialog (forms with data-confirm)."""
    page.locator("dialog[open] [data-confirm-accept]").click()


def test_volume_from_price_to_delete_and_backups(stack, stack_page):
    page = stack_page()
    email = _email("sal")
    sign_up(page, name="Sal Storage", email=email, organisation="Store Room")
    _confirm_email(page, stack, email)
    machine_url = _launch_running_machine(page, "db-1")

    # The price is on the form before anything is created.
    page.goto("/storage/volumes/")
    assert "per GiB a month" in page.inner_text("#volume-price")
    check_page(page, "volumes-empty")
    page.fill("#id_name", "data")
    page.fill("#id_size_gib", "20")
    page.get_by_role("button", name="Create volume").click()
    page.wait_for_selector("text=data", state="attached")
    # Available without a reload: the table polls while the volume is being made.
    wait_for_badge(page, "Available", scope="#volume-table tbody tr")
    check_page(page, "volumes")

    # Attach it to the running machine from the volume's own dialog.
    row = page.locator("#volume-table tbody tr:has-text('data')")
    row.get_by_role("button", name="Attach").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Attach").click()
    wait_for_badge(page, "In use", scope="#volume-table tbody tr")

    # The machine's page lists it among its disks.
    page.goto(machine_url)
    disks = page.locator("#disks")
    disks.locator("tr:has-text('data')").wait_for()
    assert "vdb" in disks.inner_text()
    check_page(page, "instance-with-disks")

    # Snapshot it while attached (crash-consistent), then detach from the machine's page.
    page.goto("/storage/volumes/")
    page.locator("#volume-table tbody tr:has-text('data')").get_by_role("button", name="Snapshot").click()
    page.locator("dialog[open]").get_by_role("button", name="Take snapshot").click()
    page.goto("/storage/snapshots/")
    wait_for_badge(page, "Available", scope="#snapshot-table tbody tr")
    check_page(page, "snapshots")

    page.goto(machine_url)
    page.locator("#disks tr:has-text('data')").get_by_role("button", name="Detach").click()
    _accept_confirm(page)
    page.wait_for_url(machine_url)
    page.goto("/storage/volumes/")
    wait_for_badge(page, "Available", scope="#volume-table tbody tr")
    page.goto(machine_url)
    assert page.locator("#disks tr:has-text('data')").count() == 0

    # Delete the volume (typing its name), then its snapshot.
    page.goto("/storage/volumes/")
    page.locator("#volume-table tbody tr:has-text('data')").get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("input[data-must-equal]").fill("data")
    dialog.get_by_role("button", name="Delete for good").click()
    page.wait_for_selector("#volume-table tbody tr:has-text('data')", state="detached", timeout=30_000)
    page.goto("/storage/snapshots/")
    page.locator("#snapshot-table tbody tr:has-text('data-')").get_by_role("button", name="Delete").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    page.wait_for_selector("#snapshot-table tbody tr:has-text('data-')", state="detached", timeout=30_000)
    check_page(page, "snapshots-empty")

    # Backups on for the machine, from its page; the Backups and My images pages.
    page.goto(machine_url)
    page.locator("#backups").get_by_role("button", name="Turn on backups").click()
    page.wait_for_selector("#backups .badge.ok:has-text('On')")
    check_page(page, "instance-backups-on")
    page.goto("/storage/backups/")
    check_page(page, "backups")
    page.goto("/storage/images/")
    check_page(page, "my-images")


ISSUE_INVOICE = """
from datetime import UTC, date, datetime
from decimal import Decimal
from billing.models import Invoice
from billing.services import invoice_finalize
from billing.services.metering import invoices_refresh
from tenants.models import Tenant
from tests.factories.billing import SegmentFactory
tenant = Tenant.objects.get(name={name!r})
SegmentFactory(
    tenant=tenant, resource_name="web-1", started_at=datetime(2026, 3, 1, tzinfo=UTC),
    ended_at=datetime(2026, 4, 1, tzinfo=UTC), price=Decimal("14.90"),
)
invoices_refresh(period_start=date(2026, 3, 1), as_of=datetime(2026, 3, 31, tzinfo=UTC), tenant_ids=[tenant.pk])
print(invoice_finalize(invoice=Invoice.objects.get(tenant=tenant), now=datetime(2026, 4, 3, tzinfo=UTC)).pk)
"""


def _pay_with_card(page, number: str) -> None:
    """Fills the test provider's card form (checked on the way) and pays."""
    page.wait_for_url(re.compile(r"/billing/pay/test/[^/]+/$"))
    page.fill("#id_number", number)
    page.fill("#id_expiry", "12/30")
    page.fill("#id_cvc", "123")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def test_invoice_paid_with_3d_secure_and_credit_topped_up(stack, stack_page):
    page = stack_page()
    email = _email("pat")
    sign_up(page, name="Pat Payer", email=email, organisation="Pay Co")
    invoice_id = stack.manage("shell", "-c", ISSUE_INVOICE.format(name="Pay Co")).strip().splitlines()[-1]

    # An invoice that is due, paid by a card whose issuer asks for 3-D Secure: approve, and it is paid.
    page.goto(f"/billing/invoices/{invoice_id}/")
    check_page(page, "invoice-due")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(r"/billing/pay/test/[^/]+/$"))
    check_page(page, "payment-card-form")
    _pay_with_card(page, "4000 0000 0000 3220")
    page.wait_for_url(re.compile(r"/billing/pay/test/[^/]+/confirm/$"))
    check_page(page, "payment-3d-secure")
    page.get_by_role("button", name="Approve payment").click()
    page.wait_for_url(re.compile(r"/billing/payments/[0-9a-f-]{36}/$"))
    wait_for_badge(page, "Paid", scope="#payment-status h2", timeout=30_000)
    assert "is paid" in page.inner_text("#payment-status")
    check_page(page, "payment-paid-invoice")
    page.goto(f"/billing/invoices/{invoice_id}/")
    assert page.get_by_role("button", name=re.compile(r"^Pay ")).count() == 0
    check_page(page, "invoice-paid")

    # Credit topped up with the card that simply works.
    page.goto("/billing/payments/top-up/")
    check_page(page, "topup-form")
    page.fill("#id_amount", "25")
    page.get_by_role("button", name="Continue to payment").click()
    _pay_with_card(page, "4242 4242 4242 4242")
    page.wait_for_url(re.compile(r"/billing/payments/[0-9a-f-]{36}/$"))
    wait_for_badge(page, "Paid", scope="#payment-status h2", timeout=30_000)
    assert "added to your credit" in page.inner_text("#payment-status")
    page.goto("/billing/")
    assert "25.00" in page.inner_text("main")
    check_page(page, "billing-overview")
    page.goto("/billing/payments/")
    assert page.locator("main table tbody tr").count() == 2
    check_page(page, "payments")
