"""The metering job: recomputes month-to-date draft invoices from the billable segments, set-based in SQL.

Charges are a pure function of the segments (and of the traffic compute recorded), so a refresh computes every
draft line from them in SQL: running it twice, late, or concurrently gives the same invoices, and no segment row is
ever loaded into Python. The arithmetic is billing.pricing's SQL twin of `started_hours()` and `line_cents()`, and
for outbound traffic of `allowance_bytes()`, `billable_gb()` and `traffic_cents()`: the month's machine lines give
the pooled allowance, compute.network's hourly traffic rows the bytes sent.

On PostgreSQL one statement computes the machine lines once and upserts those that are new or changed (unchanged
ones are not rewritten, so re-runs leave no dead rows behind) and deletes those no segment accounts for any more;
the traffic lines (which need the machine lines) and the totals follow. SQLite deletes the drafts' lines and inserts
them again.
"""

from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.models import BillingAccount, Invoice, InvoiceLine, ResourceType, Segment
from billing.pricing import (
    GB,
    RATE_SCALE,
    allowance_bytes_sql,
    billable_gb_sql,
    epoch_microseconds,
    epoch_sql,
    line_cents_sql,
    month_bounds,
    started_hours_sql,
    tax_cents_sql,
    traffic_cents_sql,
)
from billing.services.prices import resource_price_current
from compute.network.models import TrafficUsage

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
    traffic = TrafficUsage._meta.db_table
    # The price per GB in effect when the month began: a new price applies from the next month on.
    traffic_price = resource_price_current(resource_type=ResourceType.TRAFFIC, at=start)

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
        "traffic": ResourceType.TRAFFIC.value,
        "instance": ResourceType.INSTANCE.value,
        "traffic_name": "Outbound traffic",
        "traffic_price": ops.adapt_decimalfield_value(traffic_price, 18, 10),
        "traffic_price_units": int(traffic_price * RATE_SCALE),
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
    allowance = allowance_bytes_sql(allowance_gb="s.traffic_allowance_gb", hours="l.hours")
    billable = billable_gb_sql(sent="t.sent", allowance="t.allowance")
    traffic_period_to = "CASE WHEN %(as_of_ts)s < %(end)s THEN %(as_of_ts)s ELSE %(end)s END"
    # One line per draft: what its tenant's machines sent in the month beyond the allowance their lines earned.
    insert_traffic = f"""
        WITH t AS MATERIALIZED (
            SELECT {invoice}.id AS invoice_id, {invoice}.tenant_id,
                   CAST(COALESCE((SELECT SUM(u.tx_bytes) FROM {traffic} u
                                  WHERE u.tenant_id = {invoice}.tenant_id AND u.hour >= %(start)s
                                    AND u.hour < %(end)s AND u.hour < %(as_of_ts)s), 0) AS BIGINT) AS sent,
                   CAST(COALESCE((SELECT SUM({allowance}) FROM {line} l JOIN {segment} s ON s.id = l.segment_id
                                  WHERE l.invoice_id = {invoice}.id AND l.resource_type = %(instance)s), 0)
                        AS BIGINT) AS allowance
            FROM {invoice}
            WHERE {drafts}
        ),
        g AS MATERIALIZED (SELECT t.*, {billable} AS gb FROM t)
        INSERT INTO {line} (invoice_id, segment_id, resource_type, resource_id, resource_name, plan_name, quantity,
                            period_from, period_to, hours, hourly_rate, monthly_price, amount_cents)
        SELECT g.invoice_id, NULL, %(traffic)s, g.tenant_id, %(traffic_name)s,
               CAST(g.sent / {GB} AS TEXT) || ' GB sent, ' || CAST(g.allowance / {GB} AS TEXT) || ' GB included',
               g.gb, %(start)s, {traffic_period_to}, 0, %(traffic_price)s, %(traffic_price)s,
               {traffic_cents_sql(gb="g.gb", price_units="%(traffic_price_units)s")}
        FROM g
        WHERE g.gb > 0
        """
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

    # Drafts without lines get zero.
    set_totals_from_lines = set_totals(
        "SELECT i.id AS invoice_id, COALESCE(acc.tax_rate, 0) AS rate, "
        f"CAST(COALESCE((SELECT SUM(l.amount_cents) FROM {line} l WHERE l.invoice_id = i.id), 0) AS BIGINT) "
        f"AS subtotal FROM {with_rate} WHERE {draft_i}"
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
            WHERE l.invoice_id = {invoice}.id AND {drafts} AND l.segment_id IS NOT NULL
              AND (l.invoice_id, l.segment_id) NOT IN (SELECT a.invoice_id, a.segment_id FROM a)
            RETURNING 1
        )
        SELECT (SELECT COUNT(*) FROM written), (SELECT COUNT(*) FROM gone)
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
    draft_ids = f"SELECT {invoice}.id FROM {invoice} WHERE {drafts}"
    if vendor == "postgresql":
        statements += [
            refresh_postgresql,
            f"DELETE FROM {line} WHERE segment_id IS NULL AND invoice_id IN ({draft_ids})",
        ]
    else:
        statements += [f"DELETE FROM {line} WHERE invoice_id IN ({draft_ids})", insert_lines]
    statements += [insert_traffic, set_totals_from_lines]
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
