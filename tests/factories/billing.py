"""Factories for billing."""

import uuid
from datetime import date
from decimal import Decimal

import factory
from django.utils import timezone

from billing.models import Invoice, Payment, ResourceType, Segment
from tests.factories.tenants import TenantFactory


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    tenant = factory.SubFactory(TenantFactory)
    resource_type = ResourceType.INSTANCE
    resource_id = factory.LazyFunction(uuid.uuid4)
    resource_name = factory.Sequence(lambda n: f"machine-{n}")
    plan_name = "small"
    started_at = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0))
    ended_at = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        price = kwargs.pop("price", Decimal("20.00"))
        quantity = kwargs.pop("quantity", 1)
        segment = model_class(*args, **kwargs)
        segment.set_price(unit_monthly_price=Decimal(price), quantity=quantity)
        segment.save()
        return segment


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    tenant = factory.SubFactory(TenantFactory)
    period_start = factory.LazyFunction(lambda: date.today().replace(day=1))


class PaymentFactory(factory.django.DjangoModelFactory):
    """A top-up through the test provider, still open."""

    class Meta:
        model = Payment

    tenant = factory.SubFactory(TenantFactory)
    provider = Payment.Provider.TEST
    purpose = Payment.Purpose.TOPUP
    amount_cents = 2000
    currency = "EUR"
    provider_payment_id = factory.LazyFunction(lambda: f"tp_{uuid.uuid4().hex}")


FACTORIES = {Invoice: InvoiceFactory, Payment: PaymentFactory, Segment: SegmentFactory}
