"""Invitations belong to the address they were sent to."""

import pytest
from django.urls import reverse

from portal.errors import Forbidden
from tenants import services
from tenants.models import Invitation, Membership
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import InvitationFactory, UserFactory


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
