"""In the browser: turn on two-factor log-in by scanning (reading) the QR code's key, save the recovery codes, log
out, and log in again with the password and then a code from the "app"; then the owner requires it, a second
browser's session shows up on the security page and is ended from the first."""

import re
import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP

from tenants.models import Membership
from tenants.roles import Role
from tests.browser import screenshot
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


def _app_code(manual_key: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed in by hand."""
    totp = TOTP(b32decode(re.sub(r"\s", "", manual_key)))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def _log_in(page, email):
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_enrol_and_log_in_with_a_totp_code(new_page):
    owner = MembershipFactory(role=Role.OWNER).user
    tenant = Membership.objects.get(user=owner).tenant
    page = new_page()
    _log_in(page, owner.email)
    page.wait_for_url("**/")

    page.get_by_role("link", name="Security", exact=True).click()
    page.wait_for_url("**/accounts/security/")
    screenshot(page, "security-off")
    page.get_by_role("link", name="Set up two-factor log-in").click()
    page.wait_for_url("**/two-factor/setup/")
    assert page.locator("#qr-code").evaluate("img => img.naturalWidth > 100")
    manual_key = page.locator("#manual-key").inner_text()
    screenshot(page, "two-factor-setup")

    page.fill("#id_code", _app_code(manual_key))
    page.get_by_role("button", name="Turn on two-factor log-in").click()
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    screenshot(page, "recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    page.wait_for_url("**/accounts/security/")
    assert "On" in page.locator("#two-factor").inner_text()

    # Log out, then in again: the password alone is not enough.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/**")
    _log_in(page, owner.email)
    page.wait_for_url("**/accounts/two-factor/**")
    screenshot(page, "two-factor-verify")
    page.goto("/")
    page.wait_for_url("**/accounts/login/**")  # not logged in yet
    _log_in(page, owner.email)
    page.wait_for_url("**/accounts/two-factor/**")
    page.fill("#id_code", "000000")
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("text=That code is not right")
    time.sleep(1.1)  # django-otp's throttle after a wrong code
    # The code used to enrol was spent; the app's next one is accepted (TOTP allows one step of clock drift).
    page.fill("#id_code", _app_code(manual_key, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.locator("h1").inner_text() == tenant.name

    # The owner requires it of everyone.
    page.get_by_role("navigation").get_by_role("link", name="Settings", exact=True).click()
    page.check("#id_required")
    page.get_by_role("button", name="Save").nth(1).click()
    page.wait_for_selector("text=Two-factor log-in is now required")
    screenshot(page, "organisation-settings")

    # A second browser, with a recovery code: it appears on the first one's security page and is ended there.
    other = new_page()
    _log_in(other, owner.email)
    other.wait_for_url("**/accounts/two-factor/**")
    other.fill("#id_code", codes[0])
    other.get_by_role("button", name="Verify").click()
    other.wait_for_selector("text=You used a recovery code; 9 left")

    page.goto("/accounts/security/")
    rows = page.locator("#sessions tbody tr")
    assert rows.count() == 2
    screenshot(page, "security-on")
    page.locator("#sessions tbody tr", has_not_text="this browser").get_by_role("button", name="End").click()
    page.wait_for_selector("text=was ended")
    assert page.locator("#sessions tbody tr").count() == 1
    other.goto("/")
    other.wait_for_url("**/accounts/login/**")
    assert not page.console_errors and not other.console_errors
