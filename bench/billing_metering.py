"""Billing: the metering refresh against a plain INSERT … SELECT of the same rows, finalization, and the rate at
which real Celery workers render invoice PDFs and CSVs.

10,000 tenants x 10 segments (100,000 segments) in one month on a fresh PostgreSQL database. The refresh re-runs
and the plain INSERT … SELECT (the same rows, no arithmetic, into a scratch table with the line table's indexes)
alternate for several rounds; medians and their ratio are reported, with the dead line rows each re-run leaves.
Then every draft is finalized, and the workers (all their processes) render the documents of a sample.

    python bench/billing_metering.py [--tenants 10000] [--segments 10] [--rounds 3] [--pdfs 300]
"""

import argparse
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import harness

MONTH = date(2026, 3, 1)


def fill(tenant_count: int, per_tenant: int) -> None:
    from bench.support import fixtures
    from billing.models import ResourceType, Segment

    everyone = fixtures.tenants(tenant_count)
    start = datetime(2026, 2, 20, tzinfo=UTC)
    batch = []
    for index, tenant in enumerate(everyone):
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
    _sql("ANALYZE")


def _sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def plain_insert_select() -> None:
    """The lower bound: the same rows with no arithmetic, into a scratch table with the same indexes."""
    from django.db import connection, transaction

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


def timed(function, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def line_table_stats() -> tuple[int, int]:
    """(live rows, dead rows) of the invoice line table, from PostgreSQL's statistics."""
    _sql("SELECT pg_stat_force_next_flush()")
    rows = _sql("SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'billing_invoiceline'")
    return rows[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pdfs", type=int, default=300, help="invoices whose documents the workers render")
    options = parser.parse_args()

    environment = harness.bench_environment("billing")
    harness.setup_django(environment)
    from billing import services, tasks
    from billing.models import Invoice
    from billing.services.metering import invoices_refresh

    _sql("ALTER TABLE billing_invoiceline SET (autovacuum_enabled = false)")  # dead rows stay countable
    _, fill_time = timed(fill, options.tenants, options.segments)
    segments = options.tenants * options.segments
    as_of = datetime(2026, 3, 31, 12, tzinfo=UTC)
    lines, first = timed(invoices_refresh, period_start=MONTH, as_of=as_of)
    _, dead_before = line_table_stats()
    refresh, plain = [], []
    for _ in range(options.rounds):
        refresh.append(timed(invoices_refresh, period_start=MONTH, as_of=as_of)[1])
        plain.append(timed(plain_insert_select)[1])
    live, dead_after = line_table_stats()
    dead_per_run = (dead_after - dead_before) / options.rounds

    rendered = []
    tasks.render_invoice_documents.delay = lambda **kwargs: rendered.append(kwargs["invoice_id"])
    tasks.send_account_email.delay = lambda **kwargs: None
    finalized, finalize_time = timed(services.invoices_finalize_due, now=datetime(2026, 4, 3, tzinfo=UTC))

    # The documents: the finalize task's own render tasks, sent to real workers (every process of the pool).
    del tasks.render_invoice_documents.delay
    sample = rendered[: options.pdfs]
    with harness.Stack(environment) as stack:
        worker = stack.worker(concurrency=harness.os.cpu_count())
        cpu_before = worker.cpu_seconds()
        started = time.perf_counter()
        for invoice_id in sample:
            tasks.render_invoice_documents.delay(invoice_id=invoice_id)
        pending = Invoice.objects.filter(pk__in=sample, pdf="")
        deadline = time.monotonic() + 900
        while pending.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not render every sampled invoice in 15 minutes")
            time.sleep(0.1)
        pdf_time = time.perf_counter() - started
        time.sleep(0.3)  # the sampler's last look at the pool's CPU time
        pdf_cpu = (worker.cpu_seconds() - cpu_before) / len(sample)
        worker_rss = worker.peak_rss_mib()
    pdf_rate = len(sample) / pdf_time

    rows = [
        ("fill (segments)", f"{segments:,}", f"{fill_time:.1f} s", ""),
        ("refresh, first run (creates drafts)", f"{lines:,} lines", f"{first:.2f} s", ""),
        (
            "refresh, re-run (median)",
            f"{segments / harness.median(refresh):,.0f} segments/s",
            f"{harness.median(refresh):.2f} s",
            f"{harness.median(refresh) / harness.median(plain):.1f}x plain",
        ),
        ("plain INSERT … SELECT of the same rows (median)", "", f"{harness.median(plain):.2f} s", "baseline"),
        ("dead line rows left per re-run", f"{dead_per_run:,.0f}", f"{live:,} live", ""),
        ("finalize every draft", f"{finalized / finalize_time:,.0f} invoices/s", f"{finalize_time:.2f} s", ""),
        (
            f"render PDF + CSV of {len(sample)} invoices (Celery, {harness.os.cpu_count()} processes)",
            f"{pdf_rate:.1f} invoices/s",
            f"{pdf_time:.2f} s",
            f"all {finalized:,}: {finalized / pdf_rate / 60:.1f} min",
        ),
        (
            "worker CPU per invoice (PDF + CSV)",
            f"{pdf_cpu * 1000:.0f} ms",
            "",
            f"{harness.os.cpu_count() / pdf_cpu:.1f} invoices/s if the {harness.os.cpu_count()} cores were free",
        ),
        ("peak RSS of a worker process", f"{worker_rss:.0f} MiB", "", ""),
    ]
    harness.report(
        "Billing (bench/billing_metering.py)",
        rows,
        ("step", "rate / size", "time", "ratio"),
        notes=[f"{options.rounds} interleaved rounds of refresh re-run and plain INSERT … SELECT."],
    )
    harness.cleanup(environment)


if __name__ == "__main__":
    main()
