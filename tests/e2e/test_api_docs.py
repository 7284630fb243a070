"""The API in the browser: create a token on the dashboard, and the Swagger UI works under the site's CSP."""

import pytest

from tests.browser import screenshot
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _log_in(page, email):
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_create_a_token_and_try_the_api_in_the_docs(new_page):
    membership = MembershipFactory(role="member", tenant__name="Orbital Labs")
    page = new_page()
    _log_in(page, membership.user.email)

    page.get_by_role("link", name="API tokens").click()
    page.fill("#id_name", "laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith("hgr_")
    screenshot(page, "api-tokens")
    page.reload()
    assert secret not in page.content()

    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".opblock-summary-path", has_text="/api/v1/instances/").count() >= 1
    # The browser session authenticates "Try it out" requests (with the CSRF header for writes).
    page.locator(".opblock-summary", has_text="/api/v1/tenant/").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    page.wait_for_selector(".live-responses-table .response-col_status")
    assert "Orbital Labs" in page.locator(".live-responses-table").inner_text()
    screenshot(page, "api-docs")
    assert page.console_errors == [], page.console_errors
