"""Database triggers that freeze issued documents, so no code path (raw SQL, admin, a bug) can change them.

A finalized invoice may only move to paid or void and have its rendered PDF/CSV attached; its lines, credit
notes and credit ledger entries never change. Violations raise an integrity error on SQLite and PostgreSQL.
"""

from django.db import migrations

# Columns of billing_invoice a finalized invoice may still change.
MUTABLE = {"status", "paid_at", "voided_at", "pdf", "csv"}
COLUMNS = [
    "id",
    "tenant_id",
    "period_start",
    "number",
    "currency",
    "subtotal_cents",
    "tax_rate",
    "tax_cents",
    "total_cents",
    "bill_to_name",
    "bill_to_address",
    "bill_to_vat_id",
    "created_at",
    "metered_at",
    "finalized_at",
]
STATUS_MOVE_OK = "(NEW.status = OLD.status OR (OLD.status = 'finalized' AND NEW.status IN ('paid', 'void')))"

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER billing_invoice_frozen_update BEFORE UPDATE ON billing_invoice
    FOR EACH ROW WHEN OLD.status <> 'draft' AND (
        {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in COLUMNS)} OR NOT {STATUS_MOVE_OK})
    BEGIN SELECT RAISE(ABORT, 'billing: a finalized invoice cannot change'); END
    """,
    """
    CREATE TRIGGER billing_invoice_frozen_delete BEFORE DELETE ON billing_invoice
    FOR EACH ROW WHEN OLD.status <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'billing: a finalized invoice cannot be deleted'); END
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen_insert BEFORE INSERT ON billing_invoiceline
    FOR EACH ROW WHEN (SELECT status FROM billing_invoice WHERE id = NEW.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'billing: lines of a finalized invoice cannot change'); END
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen_update BEFORE UPDATE ON billing_invoiceline
    FOR EACH ROW WHEN (SELECT status FROM billing_invoice WHERE id = OLD.invoice_id) <> 'draft'
        OR (SELECT status FROM billing_invoice WHERE id = NEW.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'billing: lines of a finalized invoice cannot change'); END
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen_delete BEFORE DELETE ON billing_invoiceline
    FOR EACH ROW WHEN (SELECT status FROM billing_invoice WHERE id = OLD.invoice_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'billing: lines of a finalized invoice cannot change'); END
    """,
    """
    CREATE TRIGGER billing_creditnote_frozen BEFORE UPDATE ON billing_creditnote
    BEGIN SELECT RAISE(ABORT, 'billing: credit notes cannot change'); END
    """,
    """
    CREATE TRIGGER billing_creditnote_undeletable BEFORE DELETE ON billing_creditnote
    BEGIN SELECT RAISE(ABORT, 'billing: credit notes cannot be deleted'); END
    """,
    """
    CREATE TRIGGER billing_creditentry_frozen BEFORE UPDATE ON billing_creditentry
    BEGIN SELECT RAISE(ABORT, 'billing: credit ledger entries cannot change'); END
    """,
    """
    CREATE TRIGGER billing_creditentry_undeletable BEFORE DELETE ON billing_creditentry
    BEGIN SELECT RAISE(ABORT, 'billing: credit ledger entries cannot be deleted'); END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS billing_invoice_frozen_update",
    "DROP TRIGGER IF EXISTS billing_invoice_frozen_delete",
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen_insert",
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen_update",
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen_delete",
    "DROP TRIGGER IF EXISTS billing_creditnote_frozen",
    "DROP TRIGGER IF EXISTS billing_creditnote_undeletable",
    "DROP TRIGGER IF EXISTS billing_creditentry_frozen",
    "DROP TRIGGER IF EXISTS billing_creditentry_undeletable",
]

_RAISE = "RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation'"
POSTGRES_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION billing_invoice_frozen() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF OLD.status <> 'draft' THEN {_RAISE.format(message="billing: a finalized invoice cannot be deleted")}; END IF;
            RETURN OLD;
        END IF;
        IF OLD.status <> 'draft' AND (
            ({", ".join(f"NEW.{c}" for c in COLUMNS)}) IS DISTINCT FROM ({", ".join(f"OLD.{c}" for c in COLUMNS)})
            OR NOT {STATUS_MOVE_OK}
        ) THEN
            {_RAISE.format(message="billing: a finalized invoice cannot change")};
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER billing_invoice_frozen BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_frozen()
    """,
    f"""
    CREATE OR REPLACE FUNCTION billing_invoiceline_frozen() RETURNS trigger AS $$
    BEGIN
        IF (TG_OP <> 'INSERT' AND EXISTS (
                SELECT 1 FROM billing_invoice WHERE id = OLD.invoice_id AND status <> 'draft'))
           OR (TG_OP <> 'DELETE' AND EXISTS (
                SELECT 1 FROM billing_invoice WHERE id = NEW.invoice_id AND status <> 'draft')) THEN
            {_RAISE.format(message="billing: lines of a finalized invoice cannot change")};
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_frozen()
    """,
    f"""
    CREATE OR REPLACE FUNCTION billing_immutable_row() RETURNS trigger AS $$
    BEGIN
        {_RAISE.format(message="billing: credit notes and credit ledger entries cannot change")};
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER billing_creditnote_frozen BEFORE UPDATE OR DELETE ON billing_creditnote
    FOR EACH ROW EXECUTE FUNCTION billing_immutable_row()
    """,
    """
    CREATE TRIGGER billing_creditentry_frozen BEFORE UPDATE OR DELETE ON billing_creditentry
    FOR EACH ROW EXECUTE FUNCTION billing_immutable_row()
    """,
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS billing_invoice_frozen ON billing_invoice",
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen ON billing_invoiceline",
    "DROP TRIGGER IF EXISTS billing_creditnote_frozen ON billing_creditnote",
    "DROP TRIGGER IF EXISTS billing_creditentry_frozen ON billing_creditentry",
    "DROP FUNCTION IF EXISTS billing_invoice_frozen()",
    "DROP FUNCTION IF EXISTS billing_invoiceline_frozen()",
    "DROP FUNCTION IF EXISTS billing_immutable_row()",
]


def _run(statements: dict):
    def apply(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        )
    ]
