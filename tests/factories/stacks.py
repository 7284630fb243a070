import factory

from compute.stacks.models import Stack, StackPlan, StackRun
from tests.factories.tenants import TenantFactory


class StackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stack

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"stack-{n}")


class StackPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StackPlan

    tenant = factory.SubFactory(TenantFactory)
    stack = factory.Sequence(lambda n: f"stack-{n}")
    source = factory.LazyAttribute(lambda o: f"stack: {o.stack}\n")
    document = factory.LazyAttribute(
        lambda o: {"stack": o.stack, "region": None, **{s: {} for s in ("networks", "firewalls", "keys", "machines")}}
    )
    quota = {"ok": True, "problems": []}
    cost = {"currency": "EUR", "monthly_before": "0.00", "monthly_after": "0.00", "difference": "0.00"}
    fingerprint = "0" * 64


class StackRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StackRun

    tenant = factory.SubFactory(TenantFactory)
    stack = factory.Sequence(lambda n: f"stack-{n}")
    kind = StackRun.Kind.APPLY
    state = StackRun.State.SUCCEEDED


FACTORIES = {Stack: StackFactory, StackPlan: StackPlanFactory, StackRun: StackRunFactory}
