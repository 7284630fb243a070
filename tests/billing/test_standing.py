"""The tenant's billing standing as users see it: banners, the home card, and suspension through compute."""

from datetime import timedelta
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Invoice
from billing.pricing import month_start
from billing.services.metering import invoices_refresh
from compute.models import InstanceEvent
from tenants.models import Tenant
from tenants.services import tenant_hold, tenant_suspend
from tests.conftest import login_client
from tests.factories.billing import SegmentFactory
from tests.factories.compute import InstanceFactory


def test_hold_banner_for_every_member(tenant, member, owner):
    tenant_hold(tenant=tenant, actor=None)
    page = login_client(member).get(reverse("team")).content.decode()
    assert "is on hold" in page


def test_budget_banner_for_billing_roles_only(tenant, owner, member):
    services.budget_set(tenant=tenant, actor=owner, amount=Decimal("1.00"))
    SegmentFactory(tenant=tenant, price="672.00", started_at=timezone.now() - timedelta(hours=3))
    services.budget_check(tenant=tenant)
    assert "of this month&#x27;s budget" in login_client(owner).get(reverse("team")).content.decode()
    assert "budget" not in login_client(member).get(reverse("team")).content.decode()


def test_home_card_shows_spend_to_billing_roles(tenant, owner, member):
    SegmentFactory(tenant=tenant, price="67.20", started_at=timezone.now() - timedelta(minutes=30))
    page = login_client(owner).get(reverse("home")).content.decode()
    assert "Spend this month" in page
    assert "0.10 EUR" in page  # one started hour at 67.20 / 672
    assert "Spend this month" not in login_client(member).get(reverse("home")).content.decode()


def test_suspension_stops_running_machines_through_compute(tenant):
    running = InstanceFactory(tenant=tenant)
    assert running.state == "running"
    tenant_suspend(tenant=tenant, actor=None, note="unpaid")
    running.refresh_from_db()
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED
    assert running.state == "stopping"  # the worker's task runs after the commit
    stop = InstanceEvent.objects.get(instance=running, action="stop", result="requested")
    assert stop.actor is None  # the system, not a person


def test_metering_task_refreshes_this_month(tenant):
    from billing.tasks import meter

    SegmentFactory(tenant=tenant, price="67.20", started_at=timezone.now() - timedelta(minutes=1))
    meter.delay()
    invoice = Invoice.objects.get(tenant=tenant, period_start=month_start(timezone.now()))
    assert invoice.total_cents >= 10
    assert invoices_refresh(period_start=month_start(timezone.now())) >= 1


def test_demo_seed_is_idempotent(tenant):
    import io

    from billing import demo
    from billing.models import Budget, CreditEntry
    from billing.selectors import credit_balance
    from tests.factories.compute import FlavorFactory

    flavor = FlavorFactory(monthly_price=Decimal("7.00"))
    for _ in range(2):
        demo.seed(tenant=tenant, stdout=io.StringIO())
        demo.seed_history(tenant=tenant, stdout=io.StringIO())
        demo.seed_budget(tenant=tenant, stdout=io.StringIO())
    assert flavor.prices.get().monthly_price == Decimal("7.00")
    assert credit_balance(tenant=tenant) == demo.WELCOME_CREDIT
    assert CreditEntry.objects.filter(tenant=tenant).count() == 1
    assert Budget.objects.get(tenant=tenant).amount == Decimal("5")  # nothing runs: the smallest budget
