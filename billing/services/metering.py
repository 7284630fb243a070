"""The metering job: recomputes month-to-date draft invoices from the billable segments, set-based in SQL.

Charges are a pure function of the segments, so a refresh computes every draft line from them in SQL: running it
twice, late, or concurrently gives the same invoices, and no segment row is ever loaded into Python. The arithmetic
is billing.pricing's SQL twin of `started_hours()` and `line_cents()`.

On PostgreSQL one statement computes the lines once and, from them, upserts the lines that are new or changed
(unchanged ones are not rewritten, so re-runs leave no dead rows behind), deletes the lines no segment accounts for
any more, and sets every draft's totals. SQLite deletes the drafts' lines, inserts them again and adds them up.
"""

from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.models import BillingAccount, Invoice, InvoiceLine, Segment
from billing.pricing import (
    epoch_microseconds,
    epoch_sql,
    line_cents_sql,
    month_bounds,
    started_hours_sql,
    tax_cents_sql,
)

# PostgreSQL advisory-lock namespace of the metering job (the second key is the month as YYYYMM).
METERING_LOCK = 84021


# A version-4 UUID as 32 lowercase hex digits without dashes (how Django stores UUIDs on SQLite): random digits
# except the version digit, "4", and the variant digit, one of 8, 9, a, b (RFC 4122).
_SQLITE_UUID4 = (
    "lower(hex(randomblob(4)) || hex(randomblob(2)) || '4' || substr(hex(randomblob(2)), 2)"
    " || substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || hex(randomblob(6)))"
)


def _uuid_sql(vendor: str) -> str:
    return "gen_random_uuid()" if vendor == "postgresql" else _SQLITE_UUID4


def _tenant_filter(alias: str, tenant_ids: Iterable[UUID] | None, params: dict) -> str:
    if tenant_ids is None:
        return ""
    names = []
    for index, tenant_id in enumerate(tenant_ids):
        key = f"tenant_{index}"
        params[key] = tenant_id.hex if connection.vendor != "postgresql" else tenant_id
        names.append(f"%({key})s")
    if not names:
        return " AND 1 = 0"
    return f" AND {alias}.tenant_id IN ({', '.join(names)})"


def lock_month(period_start: date) -> None:
    """Serializes every writer of one month's invoices (metering, finalizing) until the transaction ends.

    PostgreSQL: an advisory lock, so a refresh never meets a half-finalized month and nobody deadlocks on the other's
    row locks. SQLite: its transactions already take the database's single write lock (IMMEDIATE mode).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [METERING_LOCK, period_start.year * 100 + period_start.month]
            )


def invoices_refresh(
    *, period_start: date, as_of: datetime | None = None, tenant_ids: Iterable[UUID] | None = None
) -> int:
    """Recomputes the draft invoices of one month (all tenants, or `tenant_ids`); returns how many lines it wrote
    (on PostgreSQL only new and changed lines are written).

    Drafts are created for tenants with a segment in the month; finalized invoices are never touched.
    """
    as_of = as_of or timezone.now()
    start, end = month_bounds(period_start)
    vendor = connection.vendor
    ops = connection.ops
    tenant_ids = None if tenant_ids is None else [UUID(str(t)) for t in tenant_ids]

    segment = Segment._meta.db_table
    invoice = Invoice._meta.db_table
    line = InvoiceLine._meta.db_table
    account = BillingAccount._meta.db_table

    params = {
        "period": ops.adapt_datefield_value(period_start),
        "start": ops.adapt_datetimefield_value(start),
        "end": ops.adapt_datetimefield_value(end),
        "as_of_ts": ops.adapt_datetimefield_value(as_of),
        "start_epoch": epoch_microseconds(start),
        "end_epoch": epoch_microseconds(end),
        "as_of_epoch": epoch_microseconds(as_of),
        "currency": settings.BILLING_CURRENCY,
        "now": ops.adapt_datetimefield_value(timezone.now()),
    }
    segment_scope = _tenant_filter("s", tenant_ids, params)
    invoice_scope = _tenant_filter(invoice, tenant_ids, params)
    invoice_scope_i = _tenant_filter("i", tenant_ids, params)
    overlaps = "s.started_at < %(end)s AND (s.ended_at IS NULL OR s.ended_at > %(start)s)"
    drafts = f"{invoice}.period_start = %(period)s AND {invoice}.status = 'draft'{invoice_scope}"

    # Epochs, then the three hour counts, then the amount: each step in its own materialized CTE, so the
    # database computes every expression once per row instead of re-expanding nested CASEs.
    stop = "CASE WHEN s.ended_at IS NOT NULL AND s.ended_at < %(as_of_ts)s THEN {ended} ELSE %(as_of_epoch)s END"
    hours = started_hours_sql(
        start="e.start_epoch",
        end="NULL",
        period_start="%(start_epoch)s",
        period_end="%(end_epoch)s",
        as_of="e.stop_epoch",
    )
    amount = line_cents_sql(hours="h.hours", hourly_rate_units="h.rate_units", monthly_price_units="h.price_units")
    period_to = (
        "CASE WHEN s.ended_at IS NOT NULL AND s.ended_at < %(as_of_ts)s THEN s.ended_at "
        "WHEN %(as_of_ts)s < %(end)s THEN %(as_of_ts)s ELSE %(end)s END"
    )
    line_rows = f"""
        e AS MATERIALIZED (
            SELECT {invoice}.id AS invoice_id, s.id AS segment_id, s.resource_type, s.resource_id, s.resource_name,
                   s.plan_name, s.quantity, s.hourly_rate, s.monthly_price,
                   s.hourly_rate_units AS rate_units, s.monthly_price_units AS price_units,
                   CASE WHEN s.started_at > %(start)s THEN s.started_at ELSE %(start)s END AS period_from,
                   {period_to} AS period_to,
                   {epoch_sql(vendor, "s.started_at")} AS start_epoch,
                   {stop.format(ended=epoch_sql(vendor, "s.ended_at"))} AS stop_epoch
            FROM {segment} s
            JOIN {invoice} ON {invoice}.tenant_id = s.tenant_id
            WHERE {drafts} AND {overlaps}
        ),
        h AS MATERIALIZED (SELECT e.*, {hours} AS hours FROM e),
        a AS MATERIALIZED (SELECT h.*, {amount} AS amount_cents FROM h WHERE h.hours > 0)
    """
    columns = (
        "invoice_id, segment_id, resource_type, resource_id, resource_name, plan_name, quantity, period_from, "
        "period_to, hours, hourly_rate, monthly_price, amount_cents"
    )
    insert_lines = f"WITH {line_rows} INSERT INTO {line} ({columns}) SELECT {columns} FROM a"
    tax = tax_cents_sql(subtotal_cents="x.subtotal", tax_rate_percent="x.rate")
    draft_i = f"i.period_start = %(period)s AND i.status = 'draft'{invoice_scope_i}"
    with_rate = f"{invoice} i LEFT JOIN {account} acc ON acc.tenant_id = i.tenant_id"

    def set_totals(subtotals: str) -> str:
        """Sets the totals of the drafts `subtotals` lists (invoice_id, rate, subtotal). The subtotal is cast back to
        an integer: PostgreSQL's SUM of bigints is numeric, and the tax needs integer division."""
        return f"""
            UPDATE {invoice} SET subtotal_cents = x.subtotal, tax_rate = x.rate, tax_cents = {tax},
                total_cents = x.subtotal + {tax}, metered_at = %(now)s
            FROM ({subtotals}) x
            WHERE {invoice}.id = x.invoice_id
        """

    totals_from_lines = set_totals(
        "SELECT i.id AS invoice_id, COALESCE(acc.tax_rate, 0) AS rate, CAST(t.subtotal AS BIGINT) AS subtotal "
        "FROM (SELECT invoice_id, SUM(amount_cents) AS subtotal FROM a GROUP BY invoice_id) t "
        f"JOIN {with_rate} ON i.id = t.invoice_id"
    )
    totals_of_empty_drafts = set_totals(
        f"SELECT i.id AS invoice_id, COALESCE(acc.tax_rate, 0) AS rate, 0 AS subtotal FROM {with_rate} "
        f"WHERE {draft_i} AND i.id NOT IN (SELECT a.invoice_id FROM a)"
    )
    changed = " OR ".join(f"l.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in columns.split(", ")[2:])
    # Every join below is driven from the computed rows into an index, and every "not among them" is a hashed NOT IN:
    # the drafts this refresh may just have created are not in the planner's statistics yet.
    refresh_postgresql = f"""
        WITH {line_rows},
        written AS (
            INSERT INTO {line} AS l ({columns}) SELECT {columns} FROM a
            ON CONFLICT (invoice_id, segment_id) DO UPDATE SET
                {", ".join(f"{name} = EXCLUDED.{name}" for name in columns.split(", ")[2:])}
            WHERE {changed}
            RETURNING 1
        ),
        gone AS (
            DELETE FROM {line} l USING {invoice}
            WHERE l.invoice_id = {invoice}.id AND {drafts}
              AND (l.invoice_id, l.segment_id) NOT IN (SELECT a.invoice_id, a.segment_id FROM a)
            RETURNING 1
        ),
        totals AS ({totals_from_lines} RETURNING 1),
        emptied AS ({totals_of_empty_drafts} RETURNING 1)
        SELECT (SELECT COUNT(*) FROM written), (SELECT COUNT(*) FROM gone), (SELECT COUNT(*) FROM totals),
               (SELECT COUNT(*) FROM emptied)
    """
    statements = [
        # New drafts for tenants that started using something this month.
        f"""
        INSERT INTO {invoice} (id, tenant_id, period_start, status, number, currency, subtotal_cents, tax_rate,
                               tax_cents, total_cents, bill_to_name, bill_to_address, bill_to_vat_id, created_at,
                               pdf, csv)
        SELECT {_uuid_sql(vendor)}, t.tenant_id, %(period)s, 'draft', NULL, %(currency)s, 0, 0, 0, 0, '', '', '',
               %(now)s, '', ''
        FROM (SELECT DISTINCT s.tenant_id FROM {segment} s WHERE {overlaps}{segment_scope}) t
        WHERE NOT EXISTS (SELECT 1 FROM {invoice} i WHERE i.tenant_id = t.tenant_id AND i.period_start = %(period)s)
        ON CONFLICT (tenant_id, period_start) DO NOTHING
        """,
    ]
    if vendor == "postgresql":
        statements.append(refresh_postgresql)
    else:
        statements += [
            f"DELETE FROM {line} WHERE invoice_id IN (SELECT {invoice}.id FROM {invoice} WHERE {drafts})",
            insert_lines,
            # Drafts without lines get zero.
            set_totals(
                "SELECT i.id AS invoice_id, COALESCE(acc.tax_rate, 0) AS rate, "
                f"CAST(COALESCE((SELECT SUM(l.amount_cents) FROM {line} l WHERE l.invoice_id = i.id), 0) AS BIGINT) "
                f"AS subtotal FROM {with_rate} WHERE {draft_i}"
            ),
        ]
    with transaction.atomic(), connection.cursor() as cursor:
        lock_month(period_start)
        lines = 0
        for statement in statements:
            cursor.execute(statement, params)
            if statement is refresh_postgresql:
                lines = cursor.fetchone()[0]
            elif statement is insert_lines:
                lines = cursor.rowcount
                if lines < 0:  # sqlite3 reports no row count for a statement that starts with WITH
                    cursor.execute("SELECT changes()")
                    lines = cursor.fetchone()[0]
        return lines
