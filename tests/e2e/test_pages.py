"""Every other main page state in Chromium, on the in-process live server (Celery runs inline there): the team with
a viewer, billing and an invoice, the account pages, the sign-in pages, the error pages, the operators' overview,
and the dashboard used with the keyboard alone. `check_page` checks each (tests/e2e/pages.py)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from billing.models import Invoice
from billing.services import credit_topup, invoice_finalize
from billing.services.metering import invoices_refresh
from compute.models import InstanceState
from tenants.roles import Role
from tests.e2e.pages import check_page, log_in
from tests.factories import MembershipFactory, UserFactory
from tests.factories.billing import SegmentFactory
from tests.factories.compute import HostFactory, InstanceFactory, SSHKeyFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"  # the factories' password


@pytest.fixture
def team(db):
    """Olivia owns Orbital Labs, which runs a machine, and is a member of another organisation."""
    owner = MembershipFactory(role=Role.OWNER, user__email="olivia@example.com", tenant__name="Orbital Labs")
    # A second organisation: the switcher (a labelled drop-down) is on every page she sees.
    MembershipFactory(user=owner.user, role=Role.MEMBER, tenant__name="Side Project")
    host = HostFactory(name="hv-1", boot_seconds=0, stop_seconds=0)
    instance = InstanceFactory(tenant=owner.tenant, name="web-1", state=InstanceState.RUNNING, host=host)
    SSHKeyFactory(tenant=owner.tenant, name="laptop")
    return {"owner": owner, "tenant": owner.tenant, "instance": instance}


def test_the_team_with_a_viewer_who_sees_no_action(new_page, team):
    owner = new_page()
    log_in(owner, "olivia@example.com", PASSWORD)
    owner.get_by_role("navigation").get_by_role("link", name="Team", exact=True).click()
    owner.fill("#id_email", "victor@example.com")
    owner.select_option("#id_role", Role.VIEWER)
    owner.get_by_role("button", name="Send invitation").click()
    owner.wait_for_selector("text=An invitation was sent to victor@example.com")
    check_page(owner, "team")

    link = re.search(r"https?://\S+/invitations/\S+", mail.outbox[-1].body).group(0)
    viewer = new_page()
    viewer.goto("/" + link.split("/", 3)[3])
    check_page(viewer, "invitation")
    viewer.get_by_role("link", name="Create an account").click()
    viewer.fill("#id_full_name", "Victor Viewer")
    viewer.fill("#id_password", "another-long-passphrase")
    viewer.click("button[type=submit]")
    viewer.wait_for_selector("text=You joined Orbital Labs as viewer")
    check_page(viewer, "dashboard-viewer")

    viewer.goto("/instances/")
    assert viewer.get_by_role("link", name="web-1").is_visible()
    assert viewer.locator("main .row-actions button, main .row-actions a").count() == 0
    assert viewer.get_by_role("link", name="Launch instance").count() == 0
    check_page(viewer, "instances-viewer")
    viewer.get_by_role("link", name="web-1").click()
    viewer.wait_for_url(f"**/instances/{team['instance'].pk}/")
    assert viewer.locator("main").get_by_role("button", name=re.compile("Stop|Reboot|Delete|Rename")).count() == 0
    check_page(viewer, "instance-viewer")

    viewer.console_errors.clear()  # the refused page's own status is logged as a failed resource
    viewer.goto("/instances/launch/")
    assert viewer.get_by_role("heading", name="Not allowed").is_visible()
    viewer.console_errors.clear()
    check_page(viewer, "error-403")


def test_billing_invoice_and_account_pages(new_page, team, frozen_rows_flushable):
    tenant = team["tenant"]
    SegmentFactory(
        tenant=tenant, resource_name="web-1", started_at=datetime(2026, 3, 1, tzinfo=UTC), price=Decimal("14.90")
    )
    invoices_refresh(period_start=datetime(2026, 3, 1).date(), as_of=datetime(2026, 3, 31, tzinfo=UTC))
    invoice = invoice_finalize(invoice=Invoice.objects.get(tenant=tenant), now=datetime(2026, 4, 3, tzinfo=UTC))
    credit_topup(tenant=tenant, amount=Decimal("50.00"), description="Bank transfer")

    page = new_page()
    log_in(page, "olivia@example.com", PASSWORD)
    check_page(page, "dashboard-full-owner")
    for path, name in [
        ("/billing/", "billing"),
        ("/billing/invoices/", "invoices"),
        (f"/billing/invoices/{invoice.pk}/", "invoice"),
        ("/billing/credits/", "credits"),
        ("/billing/budget/", "budget"),
        ("/billing/details/", "billing-details"),
        ("/accounts/profile/", "profile"),
        ("/accounts/security/", "security"),
        ("/api-tokens/", "api-tokens"),
        ("/settings/", "organisation-settings"),
        ("/settings/activity/", "activity"),
        ("/alerts/", "alerts"),
    ]:
        page.goto(path)
        if name == "invoice":
            assert invoice.number in page.inner_text("main") and "web-1" in page.inner_text("main")
        check_page(page, name)

    page.get_by_role("button", name="Log out").click()
    for path, name in [
        ("/accounts/login/", "log-in"),
        ("/accounts/signup/", "sign-up"),
        ("/accounts/password-reset/", "password-reset"),
    ]:
        page.goto(path)
        assert page.get_by_role("main").count() == 1
        check_page(page, name)
    page.goto("/no-such-page/")
    assert page.get_by_role("heading", name="Page not found").is_visible()
    page.console_errors.clear()  # the 404 status itself
    check_page(page, "error-404")
    assert page.request.get("/favicon.ico").headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")


def test_the_operators_overview(new_page, team):
    UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)
    page = new_page()
    log_in(page, "operator@example.com", PASSWORD)
    page.goto("/admin/overview/")
    assert page.get_by_role("heading", name=re.compile("Operations|overview", re.I)).first.is_visible()
    check_page(page, "operator-overview")
    page.goto(f"/admin/tenants/tenant/{team['tenant'].pk}/change/")
    check_page(page, "operator-tenant", phone=False)
    page.goto(f"/admin/compute/host/{team['instance'].host.pk}/change/")
    check_page(page, "operator-host", phone=False)


def _focused(page) -> str:
    return page.evaluate(
        "() => { const e = document.activeElement; return (e.innerText || e.value || e.id || e.tagName).trim(); }"
    )


def _tab_to(page, text: str, *, limit: int = 60) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if _focused(page) == text:
            return
    raise AssertionError(f"Tab never reached {text!r}")


def test_keyboard_only_launch_button_and_a_confirmation_dialog(new_page, team):
    page = new_page()
    log_in(page, "olivia@example.com", PASSWORD)
    page.goto("/instances/")

    # The first Tab reaches the skip link; following it puts the next Tab inside the page's content.
    page.keyboard.press("Tab")
    assert _focused(page) == "Skip to content"
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert _focused(page) == "Launch instance"
    page.keyboard.press("Enter")
    page.wait_for_url("**/instances/launch/")

    page.goto(f"/instances/{team['instance'].pk}/")
    _tab_to(page, "Stop")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Shut down web-1?")
    assert dialog.is_visible()
    assert _focused(page) == "Stop" and page.evaluate("() => document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Tab")
    assert _focused(page) == "Cancel"
    page.keyboard.press("Tab")  # focus stays inside the dialog
    assert page.evaluate("() => document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert _focused(page) == "Stop" and page.evaluate("() => document.activeElement.closest('dialog') === null")

    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # the dialog's own Stop, which has the focus
    page.wait_for_selector("text=web-1 is shutting down")  # the stop was asked for (the worker's part: the stack flow)
    assert not page.console_errors


def test_human_times_give_the_exact_instant_on_hover(new_page, team):
    page = new_page()
    log_in(page, "olivia@example.com", PASSWORD)
    page.goto("/instances/")
    created = page.locator("#instance-table time").first
    assert re.fullmatch(r"just now|\d+\W+\w+ ago", created.inner_text())
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d UTC", created.get_attribute("title"))
    assert datetime.fromisoformat(created.get_attribute("datetime")) > datetime.now(UTC) - timedelta(hours=1)
