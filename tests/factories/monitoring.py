from datetime import UTC

import factory

from compute.monitoring.models import AlertIncident, AlertPolicy, Metric
from tests.factories.compute import InstanceFactory
from tests.factories.tenants import TenantFactory


class AlertPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertPolicy

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Busy CPU {n}")
    metric = Metric.CPU
    threshold = 90
    duration_minutes = 5
    notify_email = True


class AlertIncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertIncident

    policy = factory.SubFactory(AlertPolicyFactory)
    tenant = factory.LazyAttribute(lambda o: o.policy.tenant)
    instance = factory.LazyAttribute(lambda o: InstanceFactory(tenant=o.policy.tenant))
    fired_at = factory.Faker("date_time_this_month", tzinfo=UTC)
    fired_value = 95


FACTORIES = {AlertPolicy: AlertPolicyFactory, AlertIncident: AlertIncidentFactory}
