import pytest
from rest_framework.test import APIClient

from tenants.models import ApiToken, Membership
from tenants.roles import Role
from tenants.services import api_token_create
from tests.factories import MembershipFactory


def token_for(user, tenant, *, scope: str = ApiToken.Scope.READ_WRITE, expires_at=None) -> tuple[ApiToken, str]:
    membership = Membership.objects.get(user=user, tenant=tenant)
    return api_token_create(membership=membership, name="test", scope=scope, expires_at=expires_at)


def bearer_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def api_client_for(user, tenant, *, scope: str = ApiToken.Scope.READ_WRITE) -> APIClient:
    return bearer_client(token_for(user, tenant, scope=scope)[1])


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def member_api(member, tenant):
    return api_client_for(member, tenant)


@pytest.fixture
def owner_api(owner, tenant):
    return api_client_for(owner, tenant)


@pytest.fixture
def viewer_api(viewer, tenant):
    return api_client_for(viewer, tenant)


@pytest.fixture
def read_token_api(member, tenant):
    return api_client_for(member, tenant, scope=ApiToken.Scope.READ)


@pytest.fixture
def outsider_api(db):
    membership = MembershipFactory(role=Role.OWNER)
    return api_client_for(membership.user, membership.tenant)
