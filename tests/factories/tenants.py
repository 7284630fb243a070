"""Factories for accounts and tenancy."""

import secrets

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.models import ActivityEntry, Invitation, Membership, Quota, Tenant, UserSession
from tenants.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password("correct-horse-battery")
    email_verified_at = factory.LazyFunction(timezone.now)


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


class ActivityEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivityEntry

    tenant = factory.SubFactory(TenantFactory)
    actor_email = factory.Sequence(lambda n: f"actor{n}@example.com")
    channel = ActivityEntry.Channel.DASHBOARD
    ip_address = "192.0.2.10"
    resource_type = ActivityEntry.ResourceType.INSTANCE
    resource_id = factory.Faker("uuid4")
    resource_name = factory.Sequence(lambda n: f"web-{n}")
    action = "launch"
    action_label = "Launch"
    outcome = ActivityEntry.Outcome.REQUESTED


class UserSessionFactory(factory.django.DjangoModelFactory):
    """A browser session of a (fresh) member of `tenant`: sessions belong to a person, not to an organisation."""

    class Meta:
        model = UserSession
        exclude = ["tenant"]

    tenant = factory.SubFactory(TenantFactory)
    user = factory.LazyAttribute(lambda o: MembershipFactory(tenant=o.tenant).user)
    session_key = factory.LazyFunction(lambda: secrets.token_hex(16))
    user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    ip_address = "192.0.2.20"


FACTORIES = {
    Tenant: TenantFactory,
    Membership: MembershipFactory,
    Invitation: InvitationFactory,
    ActivityEntry: ActivityEntryFactory,
    UserSession: UserSessionFactory,
}
