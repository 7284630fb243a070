"""A new customer's first machine and their networking, in Chromium against the whole stack: web, a separate
Celery worker and beat (tests/e2e/conftest.py), so every state change is done by the worker and seen live.

Every page state reached is checked by `check_page` (axe-core, no sideways scroll at 390 px, no browser errors)
and kept as a screenshot at both widths in var/e2e-shots/.
"""

import re
import uuid

import pytest

from tests.e2e.pages import add_key_on_launch_form, badge_text, check_page, sign_up, wait_for_badge

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def _confirm_email(page, stack, email: str) -> None:
    """Follows the confirmation link of the sign-up e-mail, which the stack's web process prints (console backend)."""

    def link():
        log = stack.logs["web"].read_text()
        tail = log[log.rfind(f"To: {email}") :] if f"To: {email}" in log else ""
        found = re.search(r"(/accounts/verify-email/[^/\s]+/)", tail)
        return found and found.group(1)

    stack.wait_for(link, what=f"the confirmation e-mail to {email}", timeout=20)
    page.goto(link())
    page.wait_for_selector(f"text={email} is confirmed")


def test_first_machine_from_sign_up_to_delete(stack, stack_page):
    # Slow the simulated hosts' boot down a little, so the build is seen (and photographed) on the list and the page.
    stack.manage("shell", "-c", "from compute.models import Host; Host.objects.update(boot_seconds=12)")
    page = stack_page()
    email = _email("fay")
    sign_up(page, name="Fay First", email=email, organisation="First Light")
    getting_started = page.locator(".getting-started")
    assert "Confirm your e-mail address" in getting_started.locator("li.current").inner_text()
    check_page(page, "dashboard-unconfirmed")
    _confirm_email(page, stack, email)
    page.goto("/")
    assert "Add your SSH key" in getting_started.locator("li.current").inner_text()
    check_page(page, "dashboard-empty")

    # A list opened before the launch, in another tab: it must learn of the new machine by itself.
    other_tab = page.context.new_page()
    other_tab.console_errors = []
    other_tab.goto("/instances/")
    assert other_tab.get_by_role("heading", name="No instances yet").is_visible()
    check_page(other_tab, "instances-empty")

    # The guided first launch: choices made, the key added inline, one press.
    getting_started.get_by_role("link", name="Launch your first machine").click()
    page.wait_for_url("**/instances/launch/")
    assert page.get_by_role("heading", name="Launch your first machine").is_visible()
    assert page.input_value("#id_name") == "web-1"
    check_page(page, "launch-form")
    add_key_on_launch_form(page)
    page.get_by_role("button", name="Launch instance").click()
    page.wait_for_url(re.compile(r"/instances/[0-9a-f-]{36}/$"))
    detail_url = page.url

    # Progress while it builds, on its page and on the list, then running without a reload.
    assert badge_text(page) in ("Pending", "Building")
    assert "web-1 is being launched" in page.locator("#instance-live").inner_text()
    check_page(page, "instance-building")
    page.goto("/instances/")
    assert badge_text(page, "#instance-table tbody tr") in ("Pending", "Building")
    check_page(page, "instances-building")
    wait_for_badge(page, "Running", scope="#instance-table tbody tr")
    other_tab.wait_for_selector("#instance-table tr:has-text('web-1')", timeout=40_000)
    assert other_tab.get_by_role("link", name="web-1").is_visible()
    other_tab.close()

    page.goto(detail_url)
    assert "being launched" not in page.locator("#instance-live").inner_text()
    check_page(page, "instance-page")

    # Stop asks in the page's own dialog, not the browser's.
    page.locator("#instance-live").get_by_role("button", name="Stop", exact=True).click()
    dialog = page.get_by_role("dialog", name="Shut down web-1?")
    assert dialog.is_visible() and "billed while stopped" in dialog.inner_text()
    check_page(page, "instance-stop-dialog", phone=False)
    dialog.get_by_role("button", name="Stop").click()
    wait_for_badge(page, "Stopped")

    page.locator("#resize label.choice:has(input[name=flavor]:not([disabled]))").first.click()
    page.locator("#resize").get_by_role("button", name="Resize").click()
    page.wait_for_selector(".timeline li:has-text('Resize succeeded')", timeout=60_000)
    wait_for_badge(page, "Stopped")
    page.locator("#instance-live").get_by_role("button", name="Start", exact=True).click()
    wait_for_badge(page, "Running")

    page.goto("/")
    assert page.locator(".getting-started").count() == 0  # a machine runs: the first-run steps are done
    check_page(page, "dashboard-full")
    page.goto("/ssh-keys/")
    check_page(page, "ssh-keys")

    page.goto(detail_url)
    page.locator("#instance-live").get_by_role("button", name="Delete").click()
    page.fill("#delete-confirm-name", "web-1")
    page.get_by_role("button", name="Delete for good").click()
    page.wait_for_url("**/instances/")
    page.wait_for_selector("text=No instances yet", timeout=60_000)


def test_networking_network_address_and_firewall_rule(stack, stack_page):
    page = stack_page()
    email = _email("nia")
    sign_up(page, name="Nia Net", email=email, organisation="Net Works")
    _confirm_email(page, stack, email)

    page.goto("/networks/")
    page.fill("#id_name", "backend")
    page.fill("#id_cidr", "10.30.0.0/24")
    page.get_by_role("button", name="Create network").click()
    page.wait_for_url(re.compile(r"/networks/[0-9a-f-]{36}/$"))
    assert "The network backend (10.30.0.0/24) was created." in page.inner_text("main")
    check_page(page, "network-detail")
    page.goto("/networks/")
    assert page.get_by_role("link", name="backend").is_visible()
    check_page(page, "networks")

    page.goto("/ips/")
    page.get_by_role("button", name="Allocate").click()
    page.wait_for_selector("table tr:has-text('203.0.113.')")
    check_page(page, "public-ips")

    page.goto("/firewalls/")
    page.fill("#id_name", "web")
    page.get_by_role("button", name="Create firewall").click()
    page.wait_for_url(re.compile(r"/firewalls/[0-9a-f-]{36}/$"))
    page.select_option("#id_protocol", "tcp")
    page.fill("#id_ports", "443")
    page.get_by_role("button", name="Add rule").click()
    page.wait_for_selector("table tr:has-text('443')")
    check_page(page, "firewall-detail")
    page.get_by_role("button", name="Remove").first.click()
    page.get_by_role("dialog", name="Remove this rule from web?").get_by_role("button", name="Remove").click()
    page.wait_for_selector("text=443", state="detached")
    page.goto("/firewalls/")
    check_page(page, "firewalls")
