"""Factories for API tokens (tests that need the secret itself use tenants.services.api_token_create)."""

import secrets

import factory

from tenants.models import ApiToken
from tenants.roles import Role
from tests.factories.tenants import MembershipFactory, TenantFactory


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token of a fresh member of `tenant`."""

    class Meta:
        model = ApiToken
        exclude = ["role"]

    tenant = factory.SubFactory(TenantFactory)
    role = Role.MEMBER
    user = factory.LazyAttribute(lambda o: MembershipFactory(tenant=o.tenant, role=o.role).user)
    name = factory.Sequence(lambda n: f"token {n}")
    scope = ApiToken.Scope.READ_WRITE
    prefix = factory.LazyFunction(lambda: ApiToken.PREFIX + secrets.token_hex(4))
    secret_hash = factory.LazyFunction(lambda: ApiToken.hash_token(secrets.token_urlsafe(32)))


FACTORIES = {ApiToken: ApiTokenFactory}
