"""Token source networks and use records: a token limited to networks is refused (403, in the API's error shape)
from anywhere else; each use records the time and address, which the token page shows."""

import pytest
from django.urls import reverse

from portal.errors import InvalidRequest
from tenants.models import ApiToken, Membership, TenantEvent
from tenants.networks import parse_networks
from tenants.services import api_token_create
from tests.api.conftest import bearer_client
from tests.api.test_generic import assert_error
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


def _token(user, tenant, networks):
    membership = Membership.objects.get(user=user, tenant=tenant)
    return api_token_create(membership=membership, name="ci", scope="read_write", allowed_networks=networks)


def test_a_token_is_refused_from_outside_its_networks(member, tenant):
    api_token, secret = _token(member, tenant, "203.0.113.0/24, 2001:db8::/32")
    client = bearer_client(secret)
    assert client.get("/api/v1/tenant/", REMOTE_ADDR="203.0.113.77").status_code == 200
    assert client.get("/api/v1/tenant/", REMOTE_ADDR="2001:db8::5").status_code == 200
    response = client.get("/api/v1/tenant/", REMOTE_ADDR="198.51.100.9")
    assert_error(response, 403, "token_network_refused")
    message = response.json()["error"]["message"]
    assert "198.51.100.9" in message and "203.0.113.0/24" in message
    # The refusal is in the organisation's log once, whoever keeps retrying.
    client.get("/api/v1/instances/", REMOTE_ADDR="198.51.100.9")
    refusals = TenantEvent.objects.filter(tenant=tenant, action=TenantEvent.Action.TOKEN_REFUSED)
    assert [(event.actor, event.result) for event in refusals] == [(member, "refused")]
    # A refused request is not a use.
    api_token.refresh_from_db()
    assert api_token.last_used_ip == "2001:db8::5"


def test_each_use_records_time_and_address_and_the_page_shows_them(member, member_client, tenant):
    api_token, secret = _token(member, tenant, "")
    client = bearer_client(secret)
    client.get("/api/v1/tenant/", REMOTE_ADDR="192.0.2.7")
    api_token.refresh_from_db()
    first_use = api_token.last_used_at
    assert (api_token.last_used_ip, first_use is not None) == ("192.0.2.7", True)
    # Another address is recorded at once, even within the minute that spares writes.
    client.get("/api/v1/tenant/", REMOTE_ADDR="192.0.2.8")
    api_token.refresh_from_db()
    assert api_token.last_used_ip == "192.0.2.8"
    page = member_client.get(reverse("api-tokens")).content.decode()
    assert "192.0.2.8" in page and "any" in page


def test_the_page_creates_a_token_with_networks_and_shows_them(member_client, member):
    response = member_client.post(
        reverse("api-tokens"), {"name": "ci", "scope": "read", "allowed_networks": "10.1.0.0/16\n192.0.2.1"}
    )
    assert response.status_code == 201
    api_token = ApiToken.objects.get(user=member)
    assert api_token.allowed_networks == ["10.1.0.0/16", "192.0.2.1/32"]
    assert "10.1.0.0/16" in member_client.get(reverse("api-tokens")).content.decode()


def test_bad_networks_are_field_errors(member_client):
    response = member_client.post(
        reverse("api-tokens"), {"name": "ci", "scope": "read", "allowed_networks": "10.1.2.3/16, intranet"}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors["allowed_networks"]
    assert "did you mean 10.1.0.0/16?" in errors[0]
    assert "“intranet” is not an address" in errors[1]
    assert not ApiToken.objects.exists()


def test_the_service_checks_networks_too(member, tenant):
    with pytest.raises(InvalidRequest) as refused:
        _token(member, tenant, ["300.1.1.1"])
    assert refused.value.code == "invalid_networks"
    assert parse_networks(["192.0.2.0/24", "192.0.2.0/24", " "]) == ["192.0.2.0/24"]


def test_a_removed_members_token_stops_at_once(owner, member, tenant):
    _, secret = _token(member, tenant, "")
    client = bearer_client(secret)
    assert client.get("/api/v1/tenant/").status_code == 200
    login_client(owner).post(reverse("membership-remove", args=[Membership.objects.get(user=member).pk]))
    assert_error(client.get("/api/v1/tenant/"), 401, "authentication_failed")
