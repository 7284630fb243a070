"""Billing benchmark: metering refresh, finalization and PDF rendering throughput. Prints figures, asserts nothing.

Run against a PostgreSQL database of its own (it is migrated and filled here; existing billing rows are deleted):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hangar_billing_bench .venv/bin/python bench/billing_metering.py \
        [--tenants 10000] [--segments 10] [--pdfs 100]
"""

import argparse
import os
import resource
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from billing import services, tasks  # noqa: E402
from billing.models import Invoice, ResourceType, Segment  # noqa: E402
from billing.services.metering import invoices_refresh  # noqa: E402
from tenants.models import Tenant  # noqa: E402

MONTH = date(2026, 3, 1)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    elapsed = time.perf_counter() - started
    print(f"{label:<58} {elapsed:8.2f} s   (peak RSS {rss_mib():.0f} MiB)", flush=True)
    return result, elapsed


def reset() -> None:
    with connection.cursor() as cursor:
        # TRUNCATE does not fire the row triggers that protect issued documents: a bench database only.
        cursor.execute(
            "TRUNCATE billing_invoiceline, billing_creditentry, billing_creditnote, billing_accountevent, "
            "billing_invoice, billing_segment, billing_documentsequence, billing_billingaccount, billing_budget, "
            "billing_budgetalert CASCADE"
        )
        cursor.execute(
            "DELETE FROM tenants_quota WHERE tenant_id IN (SELECT id FROM tenants_tenant WHERE name LIKE 'bench-%%')"
        )
        cursor.execute("DELETE FROM tenants_tenant WHERE name LIKE 'bench-%%'")


def fill(tenant_count: int, per_tenant: int) -> None:
    tenants = [Tenant(name=f"bench-{i:06d}") for i in range(tenant_count)]
    Tenant.objects.bulk_create(tenants, batch_size=5000)
    start = datetime(2026, 2, 20, tzinfo=UTC)
    batch = []
    for index, tenant in enumerate(tenants):
        for k in range(per_tenant):
            segment = Segment(
                tenant=tenant,
                resource_type=ResourceType.INSTANCE,
                resource_id=uuid.uuid4(),
                resource_name=f"vm-{index}-{k}",
                plan_name="small",
                started_at=start + timedelta(hours=k * 37 + index % 50, seconds=index % 3600),
                ended_at=None if k % 3 == 0 else start + timedelta(days=10 + k, minutes=index % 60),
            )
            segment.set_price(unit_monthly_price=Decimal("4.99") + k)
            batch.append(segment)
        if len(batch) >= 20000:
            Segment.objects.bulk_create(batch)
            batch = []
    Segment.objects.bulk_create(batch)


def plain_insert_select() -> None:
    """The lower bound: the same rows with no arithmetic, into a scratch table with the same indexes."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (LIKE billing_invoiceline INCLUDING DEFAULTS INCLUDING INDEXES) "
            "ON COMMIT DROP"
        )
        cursor.execute(
            "INSERT INTO bench_copy (id, invoice_id, segment_id, resource_type, resource_id, resource_name, plan_name, "
            "quantity, period_from, period_to, hours, hourly_rate, monthly_price, amount_cents) "
            "SELECT s.id, i.id, s.id, s.resource_type, s.resource_id, s.resource_name, s.plan_name, s.quantity, "
            "s.started_at, s.started_at, 1, s.hourly_rate, s.monthly_price, 0 FROM billing_segment s "
            "JOIN billing_invoice i ON i.tenant_id = s.tenant_id AND i.period_start = %s",
            [MONTH],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--pdfs", type=int, default=100)
    parser.add_argument("--pdf-workers", type=int, default=2)
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        print("Set DATABASE_URL to a PostgreSQL database of its own.")
        return
    call_command("migrate", verbosity=0)
    reset()
    count = options.tenants * options.segments
    timed(f"fill {options.tenants} tenants x {options.segments} segments", fill, options.tenants, options.segments)
    as_of = datetime(2026, 3, 31, 12, tzinfo=UTC)
    lines, _first = timed(
        "refresh month-to-date drafts (first run, creates drafts)", invoices_refresh, period_start=MONTH, as_of=as_of
    )
    _, second = timed("refresh again (idempotent re-run)", invoices_refresh, period_start=MONTH, as_of=as_of)
    _, plain = timed("plain INSERT ... SELECT of the same rows (the limit)", plain_insert_select)
    print(
        f"  lines: {lines}; refresh throughput {count / second:,.0f} segments/s; refresh / plain = {second / plain:.1f}"
    )

    rendered = []
    tasks.render_invoice_documents.delay = lambda **kwargs: rendered.append(kwargs["invoice_id"])
    tasks.send_account_email.delay = lambda **kwargs: None
    finalized, elapsed = timed(
        "finalize every draft (numbers, snapshots, totals, ledger)",
        services.invoices_finalize_due,
        now=datetime(2026, 4, 3, tzinfo=UTC),
    )
    print(f"  finalized {finalized}: {finalized / elapsed:,.0f} invoices/s")
    sample = rendered[: options.pdfs]
    connections.close_all()  # each worker process opens its own connection
    with ProcessPoolExecutor(max_workers=options.pdf_workers) as pool:
        _, pdf_time = timed(
            f"render PDF + CSV of {len(sample)} invoices ({options.pdf_workers} worker processes)",
            lambda: list(pool.map(render_one, sample)),
        )
    if sample:
        rate = len(sample) / pdf_time
        print(
            f"  {rate:.1f} invoices/s; all {len(rendered)} would take {len(rendered) / rate / 60:.1f} min", flush=True
        )


def render_one(invoice_id) -> None:
    services.invoice_render_documents(invoice=Invoice(pk=invoice_id))


if __name__ == "__main__":
    main()
