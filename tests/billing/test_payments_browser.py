"""A card top-up in Chromium: the amount, the test provider's card page, its 3-D-Secure step, and the payment page
that updates itself until the provider's notification has settled the payment.

Celery runs eagerly inside the live server, so the notification is delivered as soon as its transaction commits.
"""

import shutil
from pathlib import Path

import pytest

from billing.models import CreditEntry, Payment
from tenants.roles import Role
from tests.browser import CHROMIUM, screenshot
from tests.factories import MembershipFactory, UserFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()), reason=f"no Chromium at {CHROMIUM}"),
]


def test_a_card_top_up_with_three_d_secure(_plain_http_live_server, new_page, live_server, monkeypatch):
    # `_plain_http_live_server` first: billing's autouse settings fixture must not start the live server before it.
    from django.conf import settings

    # The checkout's links are absolute (SITE_URL), as a provider's return links are.
    monkeypatch.setattr(settings, "SITE_URL", live_server.url)
    user = UserFactory(email="payer@example.com")
    membership = MembershipFactory(user=user, role=Role.BILLING)
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.goto("/billing/credits/")
    page.get_by_role("link", name="Add credit").click()
    page.fill("#id_amount", "35")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url("**/billing/pay/test/**")
    assert "35.00 EUR" in page.locator("h1").inner_text()
    page.fill("#id_number", "4000 0000 0000 3220")
    page.fill("#id_expiry", "12/39")
    page.fill("#id_cvc", "321")
    page.get_by_role("button", name="Pay 35.00 EUR").click()
    page.wait_for_url("**/confirm/")
    page.get_by_role("button", name="Approve payment").click()
    page.wait_for_url("**/billing/payments/*/")
    page.locator("#payment-status .badge", has_text="Paid").wait_for()
    assert "added to your credit" in page.locator("#payment-status").inner_text()
    screenshot(page, "billing-payment-paid")

    payment = Payment.objects.get(tenant=membership.tenant)
    assert payment.status == Payment.Status.SUCCEEDED
    assert CreditEntry.objects.get(payment=payment).amount_cents == 3500
    page.goto("/billing/payments/")
    assert "35.00 EUR" in page.locator("table").inner_text()
    assert page.console_errors == []
