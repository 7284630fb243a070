import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from portal.errors import Conflict, Forbidden
from tenants import services
from tenants.models import Invitation, Membership
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import InvitationFactory, MembershipFactory, TenantFactory, UserFactory


@pytest.fixture
def _invite(django_capture_on_commit_callbacks):
    """Posts the invitation form; the e-mail goes out when the transaction commits, as in production."""

    def invite(client, email, role):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("team"), {"email": email, "role": role})

    return invite


def _link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/invitations/\S+)", message.body).group(1)


@pytest.mark.django_db
def test_invited_user_accepts_and_sees_the_tenant_with_the_invited_role(_invite, owner_client, tenant):
    response = _invite(owner_client, "new@example.com", Role.VIEWER)
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    link = _link_path(mail.outbox[0])

    invitee = UserFactory(email="new@example.com")
    client = login_client(invitee)
    page = client.get(link)
    assert page.status_code == 200
    assert tenant.name.encode() in page.content
    response = client.post(link)
    assert response.status_code == 302
    membership = Membership.objects.get(user=invitee, tenant=tenant)
    assert membership.role == Role.VIEWER
    home = client.get(reverse("home"))
    assert home.context["current_tenant"] == tenant


@pytest.mark.django_db
def test_the_invitation_token_is_stored_hashed_and_works_once(_invite, owner_client, tenant):
    _invite(owner_client, "new@example.com", Role.MEMBER)
    token = _link_path(mail.outbox[0]).strip("/").split("/")[-1]
    invitation = Invitation.objects.get(email="new@example.com")
    assert token not in invitation.token_hash
    first = UserFactory(email="new@example.com")
    login_client(first).post(f"/invitations/{token}/")
    second = UserFactory()
    response = login_client(second).post(f"/invitations/{token}/")
    assert response.status_code == 409
    assert not Membership.objects.filter(user=second, tenant=tenant).exists()


@pytest.mark.django_db
def test_an_expired_invitation_cannot_be_accepted(tenant):
    token, token_hash = Invitation.new_token()
    InvitationFactory(tenant=tenant, token_hash=token_hash, expires_at=timezone.now() - timedelta(minutes=1))
    user = UserFactory()
    with pytest.raises(Conflict, match="expired"):
        services.invitation_accept(token=token, user=user)
    response = login_client(user).post(f"/invitations/{token}/")
    assert response.status_code == 409
    assert not Membership.objects.filter(user=user, tenant=tenant).exists()


@pytest.mark.django_db
def test_anonymous_visitor_is_offered_sign_up_and_joins_by_signing_up(_invite, client, owner_client, tenant):
    _invite(owner_client, "fresh@example.com", Role.MEMBER)
    link = _link_path(mail.outbox[0])
    page = client.get(link)
    assert b"Create an account" in page.content
    response = client.post(link + "signup/", {"full_name": "Fresh", "password": "fresh-start-99"})
    assert response.status_code == 302
    # Only the membership the invitation offered: no organisation of their own.
    membership = Membership.objects.get(user__email="fresh@example.com")
    assert (membership.tenant, membership.role) == (tenant, Role.MEMBER)


@pytest.mark.django_db
def test_inviting_an_existing_member_is_a_clear_error(_invite, owner_client, tenant, member):
    response = _invite(owner_client, member.email.upper(), Role.ADMIN)
    assert response.status_code == 400
    assert "already a member" in str(response.context["invitation_form"].errors)
    assert not mail.outbox


@pytest.mark.django_db
def test_inviting_twice_while_open_is_refused_but_after_expiry_works(_invite, owner_client, tenant):
    _invite(owner_client, "twice@example.com", Role.MEMBER)
    response = _invite(owner_client, "twice@example.com", Role.MEMBER)
    assert response.status_code == 400
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _invite(owner_client, "twice@example.com", Role.MEMBER)
    assert response.status_code == 302
    assert Invitation.objects.pending().count() == 1


@pytest.mark.django_db
def test_an_admin_cannot_grant_the_owner_role(tenant, admin_user):
    response = login_client(admin_user).post(reverse("team"), {"email": "x@example.com", "role": Role.OWNER})
    assert response.status_code == 400
    assert not Invitation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER, Role.BILLING])
def test_members_without_the_right_cannot_invite_or_change_roles(tenant, owner, role):
    user = MembershipFactory(tenant=tenant, role=role).user
    target = Membership.objects.get(user=owner)
    client = login_client(user)
    assert client.post(reverse("team"), {"email": "x@example.com", "role": Role.VIEWER}).status_code == 403
    assert client.post(reverse("membership-role", args=[target.pk]), {"role": Role.VIEWER}).status_code == 403
    assert client.post(reverse("membership-remove", args=[target.pk])).status_code == 403
    target.refresh_from_db()
    assert target.role == Role.OWNER
    page = client.get(reverse("team"))
    assert page.status_code == 200
    assert b"Send invitation" not in page.content


@pytest.mark.django_db
def test_the_last_owner_can_be_neither_demoted_nor_removed(tenant, owner, admin_user):
    own = Membership.objects.get(user=owner)
    with pytest.raises(Conflict, match="last owner"):
        services.membership_change_role(membership=own, role=Role.ADMIN, actor_membership=own)
    with pytest.raises(Conflict, match="last owner"):
        services.membership_remove(membership=own, actor_membership=own)
    admin_membership = Membership.objects.get(user=admin_user)
    with pytest.raises(Forbidden):
        services.membership_remove(membership=own, actor_membership=admin_membership)
    # Through the dashboard: leaving as the last owner is refused with a message.
    response = login_client(owner).post(reverse("team-leave"), follow=True)
    assert "last owner" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.OWNER


@pytest.mark.django_db
def test_an_owner_can_hand_over_and_then_step_down(tenant, owner, member):
    own = Membership.objects.get(user=owner)
    other = Membership.objects.get(user=member)
    client = login_client(owner)
    client.post(reverse("membership-role", args=[other.pk]), {"role": Role.OWNER})
    other.refresh_from_db()
    assert other.role == Role.OWNER
    services.membership_change_role(membership=own, role=Role.MEMBER, actor_membership=own)
    own.refresh_from_db()
    assert own.role == Role.MEMBER


@pytest.mark.django_db
def test_removing_a_member_and_withdrawing_an_invitation(owner_client, tenant, member):
    target = Membership.objects.get(user=member)
    owner_client.post(reverse("membership-remove", args=[target.pk]))
    assert not Membership.objects.filter(pk=target.pk).exists()
    invitation = InvitationFactory(tenant=tenant)
    owner_client.post(reverse("invitation-revoke", args=[invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


@pytest.mark.django_db
def test_a_member_of_two_tenants_switches_between_them(tenant, member):
    second = TenantFactory(name="Second Org")
    MembershipFactory(user=member, tenant=second, role=Role.VIEWER)
    client = login_client(member)
    response = client.get(reverse("home"))
    assert b'id="tenant-switcher"' in response.content
    client.post(reverse("tenant-switch"), {"tenant": str(second.pk)})
    assert client.get(reverse("home")).context["current_tenant"] == second
    # A tenant the user does not belong to cannot be switched to.
    stranger = TenantFactory()
    client.post(reverse("tenant-switch"), {"tenant": str(stranger.pk)})
    assert client.get(reverse("home")).context["current_tenant"] == second


@pytest.mark.django_db
def test_viewer_cannot_rename_the_tenant(tenant, viewer, owner):
    response = login_client(viewer).post(reverse("tenant-settings"), {"name": "Hijacked"})
    assert response.status_code == 403
    tenant.refresh_from_db()
    assert tenant.name != "Hijacked"
    login_client(owner).post(reverse("tenant-settings"), {"name": "Renamed"})
    tenant.refresh_from_db()
    assert tenant.name == "Renamed"


@pytest.mark.django_db
def test_creating_another_organisation_makes_the_user_its_owner(member):
    client = login_client(member)
    client.post(reverse("tenant-create"), {"name": "Side Project"})
    membership = Membership.objects.get(user=member, tenant__name="Side Project")
    assert membership.role == Role.OWNER
    assert client.get(reverse("home")).context["current_tenant"].name == "Side Project"


@pytest.mark.django_db
def test_a_user_without_any_tenant_is_offered_to_create_one():
    client = login_client(UserFactory())
    response = client.get(reverse("home"))
    assert b"You are not in any organisation" in response.content
    assert client.get(reverse("team")).status_code == 404
