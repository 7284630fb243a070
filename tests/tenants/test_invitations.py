"""Invitations belong to the address they were sent to; signing up through one joins only the inviting tenant."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal.errors import Conflict, Forbidden
from tenants import services
from tenants.models import Invitation, Membership
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import InvitationFactory, UserFactory

User = get_user_model()


@pytest.fixture
def invitation_link(tenant):
    """An open invitation to invited@example.com as viewer, and the path of its e-mailed link."""
    token, token_hash = Invitation.new_token()
    invitation = InvitationFactory(tenant=tenant, email="invited@example.com", role=Role.VIEWER, token_hash=token_hash)
    return invitation, reverse("invitation-accept", args=[token]), token


@pytest.mark.django_db
def test_another_account_holding_the_link_cannot_accept(invitation_link, tenant):
    invitation, link, token = invitation_link
    other = UserFactory(email="other@example.com")

    with pytest.raises(Forbidden) as refused:
        services.invitation_accept(token=token, user=other)
    assert refused.value.code == "invitation_wrong_account"

    client = login_client(other)
    page = client.get(link).content.decode()
    assert (
        "This invitation was sent to invited@example.com; you are signed in as other@example.com. "
        "Sign out and sign in or sign up as invited@example.com" in page
    )
    assert "Accept and join" not in page
    assert f'action="{reverse("logout")}"' in page and f'name="next" value="{link}"' in page

    response = client.post(link)
    assert response.status_code == 403
    assert not Membership.objects.filter(user=other, tenant=tenant).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.django_db
def test_signing_out_from_the_invitation_page_comes_back_to_it(invitation_link):
    _invitation, link, _token = invitation_link
    client = login_client(UserFactory(email="other@example.com"))
    response = client.post(reverse("logout"), {"next": link})
    assert response.status_code == 302 and response.url == link
    assert b"Create an account" in client.get(link).content


@pytest.mark.django_db
def test_the_invited_address_matches_whatever_its_case(tenant):
    token, token_hash = Invitation.new_token()
    InvitationFactory(tenant=tenant, email="Mixed.Case@Example.com", role=Role.MEMBER, token_hash=token_hash)
    user = UserFactory(email="mixed.case@example.com")
    membership = services.invitation_accept(token=token, user=user)
    assert (membership.tenant, membership.role) == (tenant, Role.MEMBER)


def _sign_up_link(client, link) -> str:
    page = client.get(link).content.decode()
    return html.unescape(re.search(r'href="([^"]+)">Create an account', page).group(1))


@pytest.mark.django_db
def test_signing_up_through_an_invitation_joins_only_the_inviting_tenant(client, invitation_link, tenant):
    invitation, link, _token = invitation_link
    response = client.post(
        _sign_up_link(client, link),
        {
            "full_name": "Ivy Invited",
            "email": "invited@example.com",
            "organisation": "",
            "password": "fresh-start-99",
            "next": link,
        },
    )
    assert response.status_code == 302

    user = User.objects.get(email="invited@example.com")
    membership = Membership.objects.get(user=user)
    assert (membership.tenant, membership.role) == (tenant, Role.VIEWER)
    invitation.refresh_from_db()
    assert invitation.accepted_by == user
    assert client.get(reverse("home")).context["current_tenant"] == tenant


@pytest.mark.django_db
def test_the_account_gets_the_invited_address_whatever_the_browser_sends(client, invitation_link, tenant):
    _invitation, link, _token = invitation_link
    client.post(
        _sign_up_link(client, link),
        {
            "full_name": "Ivy Invited",
            "email": "someone-else@example.com",
            "organisation": "Should not exist",
            "password": "fresh-start-99",
        },
    )
    assert not User.objects.filter(email="someone-else@example.com").exists()
    assert Membership.objects.get(user__email="invited@example.com").tenant == tenant


@pytest.mark.django_db
def test_the_invitation_sign_up_form_fixes_the_address_and_asks_for_no_organisation(client, invitation_link):
    _invitation, link, _token = invitation_link
    form = client.get(_sign_up_link(client, link)).context["form"]
    assert form["email"].value() == "invited@example.com"
    assert form.fields["email"].disabled
    assert "organisation" not in form.fields


@pytest.mark.django_db
def test_an_existing_account_is_sent_to_log_in_instead(client, invitation_link):
    _invitation, _link, token = invitation_link
    UserFactory(email="invited@example.com")
    response = client.post(
        reverse("invitation-signup", args=[token]), {"full_name": "Ivy", "password": "fresh-start-99"}
    )
    assert response.status_code == 200
    assert "already exists" in str(response.context["form"].errors)
    with pytest.raises(Conflict) as refused:
        services.user_sign_up_invited(token=token, full_name="Ivy", password="fresh-start-99")
    assert refused.value.code == "account_exists"


@pytest.mark.django_db
def test_a_used_invitation_cannot_create_an_account(client, invitation_link):
    _invitation, link, token = invitation_link
    services.invitation_accept(token=token, user=UserFactory(email="invited@example.com"))
    with pytest.raises(Conflict):
        services.user_sign_up_invited(token=token, full_name="Late", password="fresh-start-99")
    response = client.get(reverse("invitation-signup", args=[token]))
    assert response.status_code == 302 and response.url == link
