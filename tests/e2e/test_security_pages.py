"""The organisation's activity page, the tokens page with source networks, and the banner of an account whose
e-mail address is not confirmed yet, as a person sees them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compute.services import instance_stop, sshkey_create
from portal.errors import Conflict
from tenants.models import Membership
from tenants.roles import Role
from tenants.services import api_token_create, invitation_create, membership_change_role
from tests.browser import screenshot
from tests.factories import MembershipFactory
from tests.factories.compute import InstanceFactory, new_public_key

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


def _log_in(page, email):
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_activity_and_tokens_pages(new_page):
    owner_membership = MembershipFactory(role=Role.OWNER, user__email="olivia@example.com", tenant__name="Orbital Labs")
    tenant = owner_membership.tenant
    member = MembershipFactory(tenant=tenant, role=Role.MEMBER, user__email="mo@example.com")
    invitation_create(tenant=tenant, invited_by_membership=owner_membership, email="vic@example.com", role="viewer")
    membership_change_role(membership=member, role=Role.ADMIN, actor_membership=owner_membership)
    sshkey_create(tenant=tenant, user=member.user, name="laptop", public_key=new_public_key())
    api_token_create(
        membership=Membership.objects.get(pk=member.pk),
        name="terraform",
        scope="read_write",
        allowed_networks="203.0.113.0/24, 2001:db8::/48",
        expires_at=timezone.now() + timedelta(days=90),
    )
    web = InstanceFactory(tenant=tenant, name="web-1", state="stopping")
    with pytest.raises(Conflict):  # refused, as it is already stopping: the log shows the refusal
        instance_stop(instance=web, user=member.user)

    page = new_page()
    _log_in(page, "olivia@example.com")
    page.get_by_role("navigation").get_by_role("link", name="Activity", exact=True).click()
    page.wait_for_url("**/settings/activity/")
    assert page.locator("table.activity tbody tr").count() == 5
    screenshot(page, "activity")
    page.select_option("#id_actor", label="mo@example.com")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/settings/activity/?**")
    assert page.locator("table.activity tbody tr").count() == 3
    screenshot(page, "activity-filtered")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.startswith("activity-")

    page.get_by_role("navigation").get_by_role("link", name="API tokens", exact=True).click()
    page.wait_for_url("**/api-tokens/")
    assert "203.0.113.0/24" in page.locator("table").inner_text()
    screenshot(page, "tokens")
    page.fill("#id_name", "ci")
    page.fill("#id_allowed_networks", "10.0.0.1/8")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_selector("text=did you mean 10.0.0.0/8?")
    screenshot(page, "tokens-network-error")
    # The refused form answers 400, which the browser reports; nothing else went wrong.
    assert all("status of 400" in error for error in page.console_errors)


def test_an_unconfirmed_address_shows_a_banner_with_resend(new_page):
    page = new_page()
    page.goto("/accounts/signup/")
    page.fill("#id_full_name", "Ada Lovelace")
    page.fill("#id_email", "ada@example.com")
    page.fill("#id_organisation", "Analytical Engines")
    page.fill("#id_password", "a-good-long-passphrase")
    page.click("button[type=submit]")
    page.wait_for_selector(".verify-banner")
    screenshot(page, "verify-banner")
    page.get_by_role("button", name="Resend the link").click()
    page.wait_for_selector("text=A new link is on its way to ada@example.com")
    assert not page.console_errors
