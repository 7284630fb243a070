"""Dated prices: the one way a price changes, and the price that applies at an instant.

Flavor.monthly_price (shown by the launch and resize forms) is the current price and is only ever written here, in
the same transaction as the dated Price row, so the two cannot disagree; operators see it read-only.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from billing import pricing
from billing.models import Price, ResourceType
from billing.selectors import DEFAULT_PRICES, resource_price_current
from compute import catalog
from compute.models import Flavor
from portal.errors import InvalidRequest


def _dated_flavor_prices(*, flavor, at: datetime):
    """A flavor's dated prices in force at `at`, latest first (`flavor`: a Flavor, its id or an OuterRef)."""
    return Price.objects.filter(resource_type=ResourceType.INSTANCE, flavor=flavor, effective_from__lte=at).order_by(
        "-effective_from"
    )


def flavor_price_current(*, flavor, at: datetime) -> Decimal:
    """The monthly price a machine of `flavor` opened at `at` is billed at: its latest dated price."""
    price = _dated_flavor_prices(flavor=flavor, at=at).values_list("monthly_price", flat=True).first()
    return Decimal(flavor.monthly_price) if price is None else Decimal(price)


def flavor_plan_at(*, flavor_id, at: datetime) -> tuple[str, Decimal, int]:
    """The flavor's name, the monthly price a machine of it opened at `at` is billed at, and its included outbound
    GB: from the catalog in memory and the dated prices kept with it (no query while neither changed)."""
    snapshot = catalog.current()
    flavor = snapshot.flavors.get(flavor_id)
    if snapshot.version is None or flavor is None:
        return _flavor_plan_read(flavor_id=flavor_id, at=at)  # no shared cache, or a flavor added since
    dated = snapshot.memo.get(DATED_PRICES)
    if dated is None:
        dated = snapshot.memo[DATED_PRICES] = _dated_instance_prices()
    for effective_from, monthly_price in dated.get(flavor_id, ()):
        if effective_from <= at:
            return flavor.name, monthly_price, flavor.included_traffic_gb
    return flavor.name, Decimal(flavor.monthly_price), flavor.included_traffic_gb


# The catalog's memo key of every flavor's dated prices. A Price row saved or deleted sets a new catalog version
# (subscribe() below), as a flavor's does, so every process reads them again at its next use.
DATED_PRICES = "billing.dated_flavor_prices"


def _dated_instance_prices() -> dict:
    """Every flavor's dated prices as (effective_from, monthly_price), latest first (future ones included: each
    applies from its instant on)."""
    dated: dict = {}
    rows = Price.objects.filter(resource_type=ResourceType.INSTANCE).order_by("flavor_id", "-effective_from")
    for flavor_id, effective_from, monthly_price in rows.values_list("flavor_id", "effective_from", "monthly_price"):
        dated.setdefault(flavor_id, []).append((effective_from, Decimal(monthly_price)))
    return dated


def _flavor_plan_read(*, flavor_id, at: datetime) -> tuple[str, Decimal, int]:
    """flavor_plan_at() from the database, in one query."""
    dated = _dated_flavor_prices(flavor=OuterRef("pk"), at=at).values("monthly_price")[:1]
    name, monthly_price, price, included_traffic_gb = (
        Flavor.objects.filter(pk=flavor_id)
        .values_list("name", "monthly_price", Subquery(dated), "included_traffic_gb")
        .get()
    )
    return name, Decimal(monthly_price) if price is None else Decimal(price), included_traffic_gb


def _on_price_change(**kwargs) -> None:
    if not kwargs.get("raw"):
        catalog.changed()


def subscribe() -> None:
    """Called once from BillingConfig.ready()."""
    from django.db.models.signals import post_delete, post_save

    post_save.connect(_on_price_change, sender=Price, dispatch_uid="billing.price_saved")
    post_delete.connect(_on_price_change, sender=Price, dispatch_uid="billing.price_deleted")


class PriceBook:
    """What compute asks billing through compute.prices: the rules of billing.pricing and today's dated prices."""

    hourly_rate = staticmethod(pricing.hourly_rate)
    round_money = staticmethod(pricing.round_money)

    @staticmethod
    def resource_price(resource_type: str) -> Decimal:
        from billing.services.lifecycle import RESOURCE_TYPES

        kind = RESOURCE_TYPES[resource_type]
        now = timezone.now()
        # A traffic price applies from the first month that begins after it was set.
        at = datetime(now.year, now.month, 1, tzinfo=UTC) if kind == ResourceType.TRAFFIC else now
        return resource_price_current(resource_type=kind, at=at)


def _check_amount(monthly_price: Decimal) -> Decimal:
    try:
        amount = Decimal(monthly_price)
    except (ArithmeticError, TypeError, ValueError):
        raise InvalidRequest("A price is a decimal amount such as 12.50.") from None
    if amount < 0 or amount.as_tuple().exponent < -4:
        raise InvalidRequest("A price is a non-negative amount with at most four decimal places.")
    return amount


def flavor_price_set(*, flavor, monthly_price: Decimal, actor=None, effective_from: datetime | None = None) -> Price:
    """Adds a dated price for a flavor, effective now: machines opened (or resized) from now on pay it."""
    amount = _check_amount(monthly_price)
    if amount.as_tuple().exponent < -2:
        raise InvalidRequest("A flavor's monthly price has at most two decimal places.")
    now = timezone.now()
    effective_from = effective_from or now
    if effective_from < now - timedelta(minutes=5):
        raise InvalidRequest("Prices cannot be back-dated: history is never edited.")
    with transaction.atomic():
        flavor = Flavor.objects.select_for_update().get(pk=flavor.pk)
        price = Price.objects.create(
            resource_type=ResourceType.INSTANCE,
            flavor=flavor,
            monthly_price=amount,
            effective_from=effective_from,
            created_by=actor,
        )
        flavor.monthly_price = amount
        flavor.save(update_fields=["monthly_price"])
    return price


def resource_price_set(*, resource_type: str, monthly_price: Decimal, actor=None) -> Price:
    """Adds a dated price per GiB-month of volume, snapshot or private image, per public IPv4 address-month, per GB
    of outbound traffic, or the backup share in percent of a machine's price, effective now (a traffic price applies
    from the first month that begins after it)."""
    if resource_type not in DEFAULT_PRICES:
        raise InvalidRequest(
            "Only volume, snapshot and image storage, public IPv4 addresses, outbound traffic and backups have a "
            "price of their own."
        )
    if resource_type == ResourceType.BACKUP and not 0 <= Decimal(_check_amount(monthly_price)) <= 100:
        raise InvalidRequest("The backup share is a percentage of the machine's price, from 0 to 100.")
    return Price.objects.create(
        resource_type=resource_type, monthly_price=_check_amount(monthly_price), created_by=actor
    )
