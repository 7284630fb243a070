"""Sign up → own tenant → confirm the address → invite a colleague → they sign up from the link and see the tenant
with the invited role."""

import re

import pytest
from django.core import mail

from tenants.models import Membership
from tenants.roles import Role
from tests.browser import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_up(page, *, name, email, organisation=""):
    page.goto("/accounts/signup/")
    page.fill("#id_full_name", name)
    page.fill("#id_email", email)
    page.fill("#id_organisation", organisation)
    page.fill("#id_password", "a-good-long-passphrase")
    page.click("button[type=submit]")


def test_sign_up_invite_and_accept_in_the_browser(new_page):
    owner = new_page()
    owner.goto("/")
    assert "/accounts/login/" in owner.url
    screenshot(owner, "login")

    _sign_up(owner, name="Olivia Owner", email="olivia@example.com", organisation="Orbital Labs")
    owner.wait_for_url("**/")
    assert owner.locator("h1").inner_text() == "Orbital Labs"
    assert "Owner" in owner.locator(".tenant-switch").inner_text()
    screenshot(owner, "home")

    # Inviting people waits until the address is confirmed: the link from the sign-up e-mail.
    verify = re.search(r"https?://\S+(/accounts/verify-email/\S+/)", mail.outbox[-1].body).group(1)
    owner.goto(verify)
    owner.wait_for_selector("text=olivia@example.com is confirmed")
    assert owner.locator(".verify-banner").count() == 0

    owner.get_by_role("navigation").get_by_role("link", name="Team", exact=True).click()
    owner.fill("#id_email", "victor@example.com")
    owner.select_option("#id_role", Role.VIEWER)
    owner.get_by_role("button", name="Send invitation").click()
    owner.wait_for_selector("text=An invitation was sent to victor@example.com")
    assert "victor@example.com" in owner.locator("#invite").inner_text()
    screenshot(owner, "team")

    link = re.search(r"https?://\S+/invitations/\S+", mail.outbox[-1].body).group(0)
    path = "/" + link.split("/", 3)[3]

    viewer = new_page()
    viewer.goto(path)
    assert "Join Orbital Labs" in viewer.locator("h1").inner_text()
    viewer.get_by_role("link", name="Create an account").click()
    viewer.wait_for_url("**/invitations/**/signup/")
    viewer.fill("#id_full_name", "Victor Viewer")
    viewer.fill("#id_password", "another-long-passphrase")
    assert viewer.input_value("#id_email") == "victor@example.com"
    assert viewer.locator("#id_organisation").count() == 0
    viewer.click("button[type=submit]")
    viewer.wait_for_selector("text=You joined Orbital Labs as viewer")
    screenshot(viewer, "viewer-home")

    # Signing up through the invitation made only the membership it offered: no organisation of their own.
    membership = Membership.objects.get(user__email="victor@example.com")
    assert (membership.tenant.name, membership.role) == ("Orbital Labs", Role.VIEWER)
    assert viewer.locator("#tenant-switcher").count() == 0
    assert "Orbital Labs" in viewer.locator(".tenant-switch").inner_text()
    viewer.get_by_role("navigation").get_by_role("link", name="Team", exact=True).click()
    viewer.wait_for_url("**/team/")
    assert viewer.locator("text=Send invitation").count() == 0
    assert viewer.locator("text=Change role").count() == 0
    assert not owner.console_errors and not viewer.console_errors
