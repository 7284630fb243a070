"""On PostgreSQL, check invoice lines once per statement (transition tables) instead of once per row.

The metering job rewrites thousands of draft lines in one statement; a per-row trigger cost more than the work.
"""

from django.db import migrations

_RAISE = "RAISE EXCEPTION 'billing: lines of a finalized invoice cannot change' USING ERRCODE = 'integrity_constraint_violation'"

CREATE = [
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen ON billing_invoiceline",
    f"""
    CREATE OR REPLACE FUNCTION billing_invoiceline_frozen_rows() RETURNS trigger AS $$
    BEGIN
        -- Nested IFs: each transition table exists only for its events, and plpgsql plans a query when reached.
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            IF EXISTS (SELECT 1 FROM billing_new_lines n JOIN billing_invoice i ON i.id = n.invoice_id
                       WHERE i.status <> 'draft') THEN {_RAISE}; END IF;
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            IF EXISTS (SELECT 1 FROM billing_old_lines o JOIN billing_invoice i ON i.id = o.invoice_id
                       WHERE i.status <> 'draft') THEN {_RAISE}; END IF;
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen_insert AFTER INSERT ON billing_invoiceline
    REFERENCING NEW TABLE AS billing_new_lines FOR EACH STATEMENT EXECUTE FUNCTION billing_invoiceline_frozen_rows()
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen_update AFTER UPDATE ON billing_invoiceline
    REFERENCING OLD TABLE AS billing_old_lines NEW TABLE AS billing_new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_invoiceline_frozen_rows()
    """,
    """
    CREATE TRIGGER billing_invoiceline_frozen_delete AFTER DELETE ON billing_invoiceline
    REFERENCING OLD TABLE AS billing_old_lines FOR EACH STATEMENT EXECUTE FUNCTION billing_invoiceline_frozen_rows()
    """,
]
DROP = [
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen_insert ON billing_invoiceline",
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen_update ON billing_invoiceline",
    "DROP TRIGGER IF EXISTS billing_invoiceline_frozen_delete ON billing_invoiceline",
    "DROP FUNCTION IF EXISTS billing_invoiceline_frozen_rows()",
    """
    CREATE TRIGGER billing_invoiceline_frozen BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_frozen()
    """,
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_prices")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
