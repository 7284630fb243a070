"""Factories for accounts and tenancy."""

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.models import Invitation, Membership, Quota, Tenant
from tenants.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password("correct-horse-battery")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Organisation {n}")
    quota = factory.RelatedFactory("tests.factories.tenants.QuotaFactory", factory_related_name="tenant")


class QuotaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Quota

    tenant = factory.SubFactory(TenantFactory, quota=None)
    instances = settings.DEFAULT_QUOTA["instances"]
    vcpus = settings.DEFAULT_QUOTA["vcpus"]
    ram_mib = settings.DEFAULT_QUOTA["ram_mib"]
    volume_gb = settings.DEFAULT_QUOTA["volume_gb"]
    public_ips = settings.DEFAULT_QUOTA["public_ips"]


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.MEMBER


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.MEMBER
    token_hash = factory.LazyFunction(lambda: Invitation.new_token()[1])
    expires_at = factory.LazyFunction(lambda: timezone.now() + settings.INVITATION_TTL)


FACTORIES = {
    Tenant: TenantFactory,
    Membership: MembershipFactory,
    Invitation: InvitationFactory,
}
