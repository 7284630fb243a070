from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from uuid import UUID

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()

_PK_PLACEHOLDER = UUID("f0f0f0f0-f0f0-4f0f-bf0f-f0f0f0f0f0f0")


@lru_cache(maxsize=512)
def _pk_url_pattern(name: str, script_prefix: str, urlconf) -> str:
    return reverse(name, kwargs={"pk": _PK_PLACEHOLDER}, urlconf=urlconf)


@register.simple_tag
def pk_url(name: str, pk) -> str:
    """`{% pk_url "compute:instance-stop" instance.pk %}`: what `{% url name pk %}` gives for a route whose one
    argument is a UUID `pk`, but reversed once per route (and script prefix), not once per row of a long table."""
    return _pk_url_pattern(name, get_script_prefix(), get_urlconf()).replace(str(_PK_PLACEHOLDER), str(pk))


@register.filter
def mib(value) -> str:
    """2048 → "2 GiB", 512 → "512 MiB"."""
    try:
        amount = int(value)
    except (TypeError, ValueError):
        return ""
    if amount >= 1024 and amount % 1024 == 0:
        return f"{amount // 1024} GiB"
    if amount >= 1024:
        return f"{amount / 1024:.1f} GiB"
    return f"{amount} MiB"


@register.filter
def percent_step(value) -> int:
    """A percentage rounded down to the 5 % steps the stylesheet has classes for (w-0 … w-100)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return max(0, min(100, int(number // 5 * 5)))


@register.filter
def money(value, arg=None) -> str:
    """An amount with its currency, the one way every page writes money: 1234.5 → "1,234.50 EUR".

    `|money:4` shows four decimal places (hourly rates); `|money:invoice.currency` another currency than the
    deployment's BILLING_CURRENCY.
    """
    if value in (None, ""):
        return ""
    places, currency = 2, settings.BILLING_CURRENCY
    if isinstance(arg, int) or (isinstance(arg, str) and arg.isdigit()):
        places = int(arg)
    elif arg:
        currency = str(arg).upper()
    amount = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{amount:,} {currency}"


@register.filter
def when(value):
    """`{{ event.created_at|when }}`: a `<time>` that reads "3 minutes ago" (or "in 6 days") and gives the exact
    UTC instant on hover and to machines. Dates without a time (an expiry day) read as the day itself."""
    if not value:
        return "never"
    if not hasattr(value, "tzinfo"):
        return format_html('<time datetime="{}">{}</time>', value.isoformat(), f"{value:%-d %b %Y}")
    exact = value.astimezone(UTC)
    title = f"{exact:%-d %b %Y, %H:%M:%S} UTC"
    delta = timezone.now() - value
    if abs(delta) < timedelta(minutes=1):
        text = "just now"
    elif delta > timedelta(0):
        text = f"{timesince(value).split(',')[0]} ago"
    else:
        text = f"in {timeuntil(value).split(',')[0]}"
    return format_html('<time datetime="{}" title="{}">{}</time>', exact.isoformat(), title, text)
