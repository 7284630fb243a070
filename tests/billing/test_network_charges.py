"""Public IPv4 addresses and outbound traffic on the invoice, to the cent."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, Price, ResourceType, Segment
from billing.pricing import GB, allowance_bytes, billable_gb, traffic_cents
from billing.selectors import tenant_month_usage
from billing.services import resource_price_set
from billing.services.metering import invoices_refresh
from compute.network.models import TrafficUsage
from compute.network.services import public_ip_allocate, public_ip_release
from tests.factories.billing import SegmentFactory
from tests.factories.compute import InstanceFactory

pytestmark = pytest.mark.django_db

MARCH = date(2026, 3, 1)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _lines(tenant, kind):
    invoice = Invoice.objects.get(tenant=tenant, period_start=MARCH)
    return list(invoice.lines.filter(resource_type=kind))


def _traffic_price(amount: str, effective_from: datetime) -> None:
    Price.objects.create(
        resource_type=ResourceType.TRAFFIC, monthly_price=Decimal(amount), effective_from=effective_from
    )


def test_an_address_kept_ten_days_is_240_started_hours(tenant):
    # 3.00 a month: 240 h x 0.0044642857 = 1.0714… → 1.07
    SegmentFactory(
        tenant=tenant,
        resource_type=ResourceType.IPV4,
        plan_name="IPv4",
        resource_name="IPv4 203.0.113.7",
        price="3.00",
        started_at=at(2026, 3, 5, 12),
        ended_at=at(2026, 3, 15, 12),
    )
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    line = _lines(tenant, ResourceType.IPV4)[0]
    assert (line.hours, line.amount) == (240, Decimal("1.07"))
    assert Invoice.objects.get(tenant=tenant, period_start=MARCH).total == Decimal("1.07")


def test_an_address_kept_all_month_is_capped_at_its_monthly_price(tenant):
    SegmentFactory(tenant=tenant, resource_type=ResourceType.IPV4, price="3.00", started_at=at(2026, 2, 1))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    line = _lines(tenant, ResourceType.IPV4)[0]
    assert (line.hours, line.amount) == (744, Decimal("3.00"))


def test_allocation_opens_and_release_closes_the_addresss_segment_at_the_dated_price(tenant, member):
    from compute.network.models import PublicIPPool

    PublicIPPool.objects.create(name="p", cidr="203.0.113.0/29")
    resource_price_set(resource_type=ResourceType.IPV4, monthly_price=Decimal("2.50"))
    public_ip = public_ip_allocate(tenant=tenant, user=member)
    segment = Segment.objects.get(resource_id=public_ip.pk)
    assert (segment.resource_type, segment.monthly_price, segment.ended_at) == ("ipv4", Decimal("2.5000"), None)
    assert segment.resource_name == f"IPv4 {public_ip.address}"
    public_ip_release(public_ip=public_ip, user=member)
    segment.refresh_from_db()
    assert segment.ended_at is not None and segment.ended_at <= timezone.now()


def _machine_segment(tenant, *, allowance_gb: int, start, end=None):
    return SegmentFactory(
        tenant=tenant, price="10.00", traffic_allowance_gb=allowance_gb, started_at=start, ended_at=end
    )


def _sent(tenant, amount: int, hour: datetime) -> None:
    instance = InstanceFactory(tenant=tenant)
    TrafficUsage.objects.create(tenant=tenant, instance=instance, hour=hour, tx_bytes=amount, rx_bytes=amount * 3)


def test_traffic_above_the_pooled_pro_rata_allowance_is_billed_per_started_gb(tenant):
    _traffic_price("0.0125", at(2026, 2, 1))
    # Two machines pool their allowance: 100 GB for 336 h (half a billing month) and 40 GB for the whole month.
    _machine_segment(tenant, allowance_gb=100, start=at(2026, 3, 1), end=at(2026, 3, 15))
    _machine_segment(tenant, allowance_gb=40, start=at(2026, 2, 20))
    _sent(tenant, 60 * GB, at(2026, 3, 3, 10))
    _sent(tenant, 30 * GB + 1, at(2026, 3, 20, 23))
    _sent(tenant, 500 * GB, at(2026, 4, 1, 0))  # April's: not this month's

    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))

    # Allowance: 100 GB x 336/672 + 40 GB (744 h, capped at 672) = 90 GB; sent 90 GB + 1 byte: one started GB.
    line = _lines(tenant, ResourceType.TRAFFIC)[0]
    assert line.segment is None
    assert line.quantity == 1
    assert line.amount == Decimal("0.01")  # 1 x 0.0125 rounded half up
    assert line.plan_name == "90 GB sent, 90 GB included"
    assert line.resource_id == tenant.pk


def test_traffic_within_the_allowance_is_not_billed(tenant):
    _machine_segment(tenant, allowance_gb=100, start=at(2026, 3, 1))
    _sent(tenant, 99 * GB, at(2026, 3, 30))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 4, 1, 2))
    assert _lines(tenant, ResourceType.TRAFFIC) == []


def test_traffic_charge_to_the_cent_and_the_live_usage_agrees_with_the_invoice(tenant):
    _traffic_price("0.0100", at(2026, 1, 1))
    _traffic_price("0.0500", at(2026, 3, 10))  # a price set during March applies from April on
    _machine_segment(tenant, allowance_gb=1000, start=at(2026, 3, 10, 0, 30))
    _sent(tenant, 1234 * GB, at(2026, 3, 12, 8))
    _sent(tenant, 777 * GB + 5, at(2026, 3, 15, 9))
    as_of = at(2026, 3, 20, 0, 30)

    invoices_refresh(period_start=MARCH, as_of=as_of)

    # 240 started hours: 1000 GB x 240/672 = 357.142857142 GB; 2011 GB + 5 B sent → 1654 started GB x 0.01 = 16.54
    expected_allowance = allowance_bytes(allowance_gb=1000, hours=240)
    assert expected_allowance == 357_142_857_142
    gb = billable_gb(sent_bytes=2011 * GB + 5, allowance=expected_allowance)
    assert gb == 1654
    line = _lines(tenant, ResourceType.TRAFFIC)[0]
    assert (line.quantity, line.amount, line.hourly_rate) == (1654, Decimal("16.54"), Decimal("0.0100000000"))
    assert line.amount == Decimal(traffic_cents(gb=gb, price_per_gb=Decimal("0.01"))) / 100
    usage = tenant_month_usage(tenant=tenant, period_start=MARCH, as_of=as_of)
    assert usage.traffic.billable_gb == 1654
    assert usage.traffic.cost == Decimal("16.54")
    invoice = Invoice.objects.get(tenant=tenant, period_start=MARCH)
    assert usage.cost == invoice.subtotal
    traffic = next(resource for resource in usage.resources if resource.resource_type == "traffic")
    assert traffic.cost == Decimal("16.54") and traffic.forecast >= traffic.cost


def test_refreshing_twice_gives_the_same_traffic_line(tenant):
    _machine_segment(tenant, allowance_gb=1, start=at(2026, 3, 1))
    _sent(tenant, 5 * GB, at(2026, 3, 2))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 3))
    invoices_refresh(period_start=MARCH, as_of=at(2026, 3, 3))
    assert len(_lines(tenant, ResourceType.TRAFFIC)) == 1


def test_the_traffic_price_is_set_like_the_others(admin_user):
    price = resource_price_set(resource_type=ResourceType.TRAFFIC, monthly_price=Decimal("0.02"), actor=admin_user)
    assert price.resource_type == "traffic"


def test_the_billing_page_and_the_invoice_show_the_traffic(tenant, owner_client):
    now = timezone.now()
    _machine_segment(tenant, allowance_gb=1, start=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    _sent(tenant, 3 * GB, now.replace(minute=0, second=0, microsecond=0))

    page = owner_client.get("/billing/").content.decode()
    assert "Outbound traffic" in page
    assert "3.00 GB of" in page

    invoices_refresh(period_start=now.date().replace(day=1), as_of=now)
    invoice = Invoice.objects.get(tenant=tenant)
    document = owner_client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert "Outbound traffic" in document and " GB</td>" in document and " EUR/GB" in document


def test_the_usage_endpoint_reports_the_traffic(tenant, owner):
    from tests.api.conftest import api_client_for

    now = timezone.now()
    _machine_segment(tenant, allowance_gb=1000, start=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    _sent(tenant, 7 * GB, now.replace(minute=0, second=0, microsecond=0))
    body = api_client_for(owner, tenant).get("/api/v1/usage/").json()
    assert body["traffic"]["sent_bytes"] == 7 * GB
    assert body["traffic"]["billable_gb"] == 0
    assert body["traffic"]["price_per_gb"] == "0.0100"
