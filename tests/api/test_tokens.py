"""API tokens: authentication, scope, expiry, revocation, demotion and removal; the dashboard page."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants.models import ApiToken, Membership
from tenants.roles import Role
from tenants.selectors import api_token_find
from tenants.services import api_token_create, api_token_touch
from tenants.services.tokens import LAST_USED_RESOLUTION
from tests.api.conftest import bearer_client, token_for
from tests.api.test_generic import assert_error
from tests.conftest import login_client
from tests.factories import MembershipFactory
from tests.factories.compute import new_public_key

pytestmark = pytest.mark.django_db


def test_secret_is_stored_hashed_with_a_recognisable_prefix(member, tenant):
    api_token, secret = token_for(member, tenant)
    assert secret.startswith(api_token.prefix + "_")
    assert api_token.prefix.startswith("hgr_") and len(api_token.prefix) == 12
    stored = ApiToken.objects.get(pk=api_token.pk)
    assert secret not in {stored.secret_hash, stored.prefix, stored.name}
    assert stored.secret_hash == ApiToken.hash_token(secret)


def test_token_fixes_user_and_tenant(member, tenant):
    # The same user in a second tenant: the token still answers for its own tenant only.
    other = MembershipFactory(user=member, role=Role.OWNER).tenant
    _, secret = token_for(member, tenant)
    body = bearer_client(secret).get("/api/v1/tenant/").json()
    assert body["id"] == str(tenant.pk) and body["role"] == "member"
    assert body["id"] != str(other.pk)


def test_malformed_authorization_headers_are_401(anon_api):
    for header in ("Bearer", "Bearer a b", "Bearer hgr_x_\u00e9", "Bearer " + "x" * 300):
        anon_api.credentials(HTTP_AUTHORIZATION=header)
        assert_error(anon_api.get("/api/v1/tenant/"), 401)


def test_expired_token_is_401(member, tenant):
    api_token, secret = token_for(member, tenant, expires_at=timezone.now() + timedelta(days=1))
    client = bearer_client(secret)
    assert client.get("/api/v1/tenant/").status_code == 200
    ApiToken.objects.filter(pk=api_token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(client.get("/api/v1/tenant/"), 401, "authentication_failed")


def test_revoked_token_is_401_at_once(owner, member, tenant):
    api_token, secret = token_for(member, tenant)
    client = bearer_client(secret)
    assert client.get("/api/v1/tenant/").status_code == 200
    owner_client = login_client(owner)
    response = owner_client.post(reverse("api-token-revoke", args=[api_token.pk]))
    assert response.status_code == 302
    assert_error(client.get("/api/v1/tenant/"), 401, "authentication_failed")


def test_removed_member_token_is_401_at_once(member, tenant):
    _, secret = token_for(member, tenant)
    client = bearer_client(secret)
    assert client.get("/api/v1/tenant/").status_code == 200
    Membership.objects.filter(user=member, tenant=tenant).delete()
    assert_error(client.get("/api/v1/tenant/"), 401, "authentication_failed")


def test_demoted_member_token_loses_write_rights_at_once(member, tenant):
    _, secret = token_for(member, tenant)
    client = bearer_client(secret)
    key = {"name": "laptop", "public_key": new_public_key()}
    assert client.post("/api/v1/ssh-keys/", key, format="json").status_code == 201
    Membership.objects.filter(user=member, tenant=tenant).update(role=Role.VIEWER)
    key = {"name": "desktop", "public_key": new_public_key()}
    assert_error(client.post("/api/v1/ssh-keys/", key, format="json"), 403, "permission_denied")
    assert client.get("/api/v1/ssh-keys/").status_code == 200


def test_deactivated_user_token_is_401(member, tenant):
    _, secret = token_for(member, tenant)
    member.is_active = False
    member.save(update_fields=["is_active"])
    assert_error(bearer_client(secret).get("/api/v1/tenant/"), 401)


def test_read_token_reads_but_never_writes(owner, tenant):
    _, secret = token_for(owner, tenant, scope=ApiToken.Scope.READ)
    client = bearer_client(secret)
    assert client.get("/api/v1/ssh-keys/").status_code == 200
    response = client.post("/api/v1/ssh-keys/", {"name": "k", "public_key": new_public_key()}, format="json")
    assert_error(response, 403, "token_read_only")


def test_last_used_is_written_at_most_once_a_minute(member, tenant):
    api_token, secret = token_for(member, tenant)
    client = bearer_client(secret)
    client.get("/api/v1/tenant/")
    first = ApiToken.objects.get(pk=api_token.pk).last_used_at
    assert first is not None
    client.get("/api/v1/tenant/")
    assert ApiToken.objects.get(pk=api_token.pk).last_used_at == first
    found = api_token_find(token=secret)
    api_token_touch(api_token=found, now=first + LAST_USED_RESOLUTION)
    assert ApiToken.objects.get(pk=api_token.pk).last_used_at == first + LAST_USED_RESOLUTION


def test_session_works_and_needs_csrf_for_writes(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.get("/api/v1/ssh-keys/").status_code == 200
    response = client.post(
        "/api/v1/ssh-keys/", {"name": "k", "public_key": new_public_key()}, content_type="application/json"
    )
    assert_error(response, 403, "permission_denied")
    assert "CSRF" in response.json()["error"]["message"]
    client.get(reverse("api-tokens"))  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/ssh-keys/",
        {"name": "k", "public_key": new_public_key()},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf,
    )
    assert response.status_code == 201, response.content


# --- the dashboard page ------------------------------------------------------------------------------------------


def test_page_creates_a_token_and_shows_the_secret_once(member_client, member, tenant):
    response = member_client.post(reverse("api-tokens"), {"name": "ci", "scope": "read", "expires_in": "30"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    secret = response.context["new_token"]
    assert secret.startswith("hgr_")
    assert secret in response.content.decode()
    assert 'data-copy="#new-token"' in response.content.decode()
    api_token = ApiToken.objects.get(user=member)
    assert api_token.scope == "read" and api_token.tenant == tenant
    assert timedelta(days=29) < api_token.expires_at - timezone.now() <= timedelta(days=30)
    page = member_client.get(reverse("api-tokens")).content.decode()
    assert secret not in page
    assert api_token.prefix in page
    assert bearer_client(secret).get("/api/v1/tenant/").status_code == 200


def test_page_rejects_bad_input_with_form_errors(member_client):
    response = member_client.post(reverse("api-tokens"), {"name": "  ", "scope": "root", "expires_in": "9"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"name", "scope", "expires_in"}
    assert not ApiToken.objects.exists()


def test_any_role_may_create_tokens(viewer_client, viewer):
    response = viewer_client.post(reverse("api-tokens"), {"name": "reports", "scope": "read_write"})
    assert response.status_code == 201
    # The token exists, but it can never do more than the viewer role.
    secret = response.context["new_token"]
    key = {"name": "k", "public_key": new_public_key()}
    assert bearer_client(secret).post("/api/v1/ssh-keys/", key, format="json").status_code == 403


def test_members_see_their_own_tokens_owners_see_all(member, admin_user, tenant, member_client):
    own, _ = token_for(member, tenant)
    theirs, _ = token_for(admin_user, tenant)
    assert list(member_client.get(reverse("api-tokens")).context["tokens"]) == [own]
    admin_page = login_client(admin_user).get(reverse("api-tokens"))
    assert set(admin_page.context["tokens"]) == {own, theirs}


def test_member_cannot_revoke_someone_elses_token(member_client, admin_user, tenant):
    theirs, _ = token_for(admin_user, tenant)
    assert member_client.post(reverse("api-token-revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_admin_revokes_a_members_token(member, admin_user, tenant):
    api_token, _ = token_for(member, tenant)
    response = login_client(admin_user).post(reverse("api-token-revoke", args=[api_token.pk]))
    assert response.status_code == 302
    api_token.refresh_from_db()
    assert api_token.status == "revoked"


def test_outsider_cannot_revoke(outsider_client, member, tenant):
    api_token, _ = token_for(member, tenant)
    assert outsider_client.post(reverse("api-token-revoke", args=[api_token.pk])).status_code == 404


def test_create_service_refuses_a_past_expiry(member, tenant):
    from portal.errors import InvalidRequest

    membership = Membership.objects.get(user=member, tenant=tenant)
    with pytest.raises(InvalidRequest):
        api_token_create(membership=membership, name="x", scope="read", expires_at=timezone.now())


def test_page_lists_within_a_fixed_number_of_queries(owner, owner_client, tenant, django_assert_max_num_queries):
    for _ in range(5):
        token_for(owner, tenant)
    with django_assert_max_num_queries(10):
        response = owner_client.get(reverse("api-tokens"))
    assert response.status_code == 200
    assert len(response.context["tokens"]) == 5


def test_operators_list_and_revoke_tokens_in_the_admin(member, tenant):
    from tests.factories import UserFactory

    api_token, secret = token_for(member, tenant)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = login_client(staff)
    page = client.get(reverse("admin:tenants_apitoken_changelist"))
    assert page.status_code == 200 and api_token.prefix in page.content.decode()
    assert secret not in page.content.decode()
    response = client.post(
        reverse("admin:tenants_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [str(api_token.pk)]},
    )
    assert response.status_code == 302
    api_token.refresh_from_db()
    assert api_token.status == "revoked"
    assert_error(bearer_client(secret).get("/api/v1/tenant/"), 401)
