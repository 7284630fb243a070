"""The organisation's own log: every change to it records exactly one event, by whoever made the change."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tenants import services
from tenants.models import ApiToken, Invitation, Membership, TenantEvent
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import InvitationFactory, UserFactory
from tests.factories.api import ApiTokenFactory

User = get_user_model()
Action = TenantEvent.Action


def _the_event(tenant) -> TenantEvent:
    events = list(TenantEvent.objects.filter(tenant=tenant))
    assert len(events) == 1, [str(event) for event in events]
    return events[0]


@pytest.mark.django_db
def test_renaming_the_organisation(owner_client, owner, tenant):
    old_name = tenant.name
    owner_client.post(reverse("tenant-settings"), {"name": "Renamed Ltd"})
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.RENAME, owner)
    assert old_name in event.message and "Renamed Ltd" in event.message


@pytest.mark.django_db
def test_changing_a_role_names_the_member_and_both_roles(owner_client, owner, member, tenant):
    target = Membership.objects.get(user=member)
    owner_client.post(reverse("membership-role", args=[target.pk]), {"role": Role.ADMIN})
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.ROLE_CHANGE, owner)
    assert event.message == f"{member.email}: member → admin."


@pytest.mark.django_db
def test_removing_a_member(owner_client, owner, member, tenant):
    target = Membership.objects.get(user=member)
    owner_client.post(reverse("membership-remove", args=[target.pk]))
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.MEMBER_REMOVE, owner)
    assert event.message == f"Removed {member.email} (member)."


@pytest.mark.django_db
def test_leaving_the_organisation(member_client, member, tenant):
    member_client.post(reverse("team-leave"))
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.MEMBER_REMOVE, member)
    assert event.message == f"{member.email} (member) left the organisation."


@pytest.mark.django_db
def test_sending_an_invitation(owner_client, owner, tenant):
    owner_client.post(reverse("team"), {"email": "new@example.com", "role": Role.VIEWER})
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.INVITE, owner)
    assert event.message == "Invited new@example.com as viewer."


@pytest.mark.django_db
def test_accepting_an_invitation(tenant):
    token, token_hash = Invitation.new_token()
    InvitationFactory(tenant=tenant, email="new@example.com", role=Role.ADMIN, token_hash=token_hash)
    invitee = UserFactory(email="new@example.com")
    login_client(invitee).post(reverse("invitation-accept", args=[token]))
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.INVITE_ACCEPT, invitee)
    assert "new@example.com" in event.message and "admin" in event.message


@pytest.mark.django_db
def test_signing_up_through_an_invitation_is_an_acceptance(client, tenant):
    token, token_hash = Invitation.new_token()
    InvitationFactory(tenant=tenant, email="new@example.com", token_hash=token_hash)
    client.post(reverse("invitation-signup", args=[token]), {"full_name": "New", "password": "fresh-start-99"})
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.INVITE_ACCEPT, User.objects.get(email="new@example.com"))


@pytest.mark.django_db
def test_withdrawing_an_invitation(owner_client, owner, tenant):
    invitation = InvitationFactory(tenant=tenant, email="gone@example.com")
    owner_client.post(reverse("invitation-revoke", args=[invitation.pk]))
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.INVITE_REVOKE, owner)
    assert "gone@example.com" in event.message


@pytest.mark.django_db
def test_creating_an_api_token(member_client, member, tenant):
    member_client.post(reverse("api-tokens"), {"name": "ci runner", "scope": "read", "expires_in": ""})
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.TOKEN_CREATE, member)
    prefix = ApiToken.objects.get().prefix
    assert "“ci runner”" in event.message and prefix in event.message and "never expires" in event.message


@pytest.mark.django_db
def test_revoking_someone_elses_token_twice_records_it_once(owner_client, owner, tenant):
    api_token = ApiTokenFactory(tenant=tenant, name="deploy")
    owner_client.post(reverse("api-token-revoke", args=[api_token.pk]))
    owner_client.post(reverse("api-token-revoke", args=[api_token.pk]))
    event = _the_event(tenant)
    assert (event.action, event.actor) == (Action.TOKEN_REVOKE, owner)
    assert "“deploy”" in event.message and api_token.user.email in event.message


@pytest.mark.django_db
def test_an_operator_revoking_tokens_is_logged_in_each_tenant(tenant, outsider):
    operator = UserFactory(is_staff=True, is_superuser=True)
    own = ApiTokenFactory(tenant=tenant)
    other = ApiTokenFactory(tenant=Membership.objects.get(user=outsider).tenant)
    already = ApiTokenFactory(tenant=tenant)
    services.api_token_revoke(api_token=already, actor_membership=Membership.objects.get(user=already.user))
    TenantEvent.objects.all().delete()

    response = login_client(operator).post(
        reverse("admin:tenants_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [str(own.pk), str(other.pk), str(already.pk)]},
    )

    assert response.status_code == 302
    for api_token in (own, other):
        event = _the_event(api_token.tenant)
        assert (event.action, event.actor) == (Action.TOKEN_REVOKE, operator)
        assert "operator" in event.message and api_token.prefix in event.message


@pytest.mark.django_db
def test_refused_or_empty_changes_record_nothing(tenant, owner, viewer, owner_client):
    login_client(viewer).post(reverse("tenant-settings"), {"name": "Hijacked"})
    own = Membership.objects.get(user=owner)
    owner_client.post(reverse("membership-role", args=[own.pk]), {"role": Role.ADMIN})  # the last owner
    services.membership_change_role(
        membership=Membership.objects.get(user=viewer), role=Role.VIEWER, actor_membership=own
    )
    owner_client.post(reverse("tenant-settings"), {"name": tenant.name})
    assert not TenantEvent.objects.exists()


@pytest.mark.django_db
def test_owners_and_admins_see_the_activity_on_the_team_page(
    owner_client, owner, admin_user, member, tenant, django_assert_max_num_queries
):
    for n in range(5):
        services.invitation_create(
            tenant=tenant,
            invited_by_membership=Membership.objects.get(user=owner),
            email=f"guest{n}@example.com",
            role=Role.VIEWER,
        )
    with django_assert_max_num_queries(15):
        page = owner_client.get(reverse("team"))
    content = page.content.decode()
    assert 'id="activity"' in content
    assert "Invited guest4@example.com as viewer." in content and owner.display_name in content
    assert page.context["events"][0].message == "Invited guest4@example.com as viewer."
    assert 'id="activity"' in login_client(admin_user).get(reverse("team")).content.decode()
    assert 'id="activity"' not in login_client(member).get(reverse("team")).content.decode()


@pytest.mark.django_db
def test_the_page_shows_only_the_latest_fifty(owner_client, owner, tenant):
    own = Membership.objects.get(user=owner)
    for n in range(51):
        services.tenant_rename(tenant=tenant, name=f"Name {n}", actor_membership=own)
    events = owner_client.get(reverse("team")).context["events"]
    assert len(events) == 50
    assert events[0].message.endswith("to “Name 50”.")


@pytest.mark.django_db
def test_operators_read_the_log_in_the_admin_but_cannot_change_it(tenant, owner):
    services.tenant_rename(tenant=tenant, name="Logged", actor_membership=Membership.objects.get(user=owner))
    event = TenantEvent.objects.get()
    client = login_client(UserFactory(is_staff=True, is_superuser=True))
    changelist = client.get(reverse("admin:tenants_tenantevent_changelist"))
    assert changelist.status_code == 200 and "Logged" in changelist.content.decode()
    assert client.get(reverse("admin:tenants_tenantevent_change", args=[event.pk])).status_code == 200
    assert client.get(reverse("admin:tenants_tenantevent_add")).status_code == 403
    change, delete = (reverse(f"admin:tenants_tenantevent_{page}", args=[event.pk]) for page in ("change", "delete"))
    assert client.post(change, {"message": "x"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.message != "x"
