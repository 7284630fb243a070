"""Rows the metering SQL inserts itself get real random UUIDs (version 4, RFC 4122 variant), as uuid.uuid4 gives."""

import uuid
from datetime import UTC, date, datetime

import pytest

from billing.models import Invoice
from billing.services.metering import invoices_refresh
from tests.factories.billing import SegmentFactory

TENANTS = 12


@pytest.mark.django_db
def test_drafts_created_by_metering_have_version_4_uuids():
    # One segment per tenant (each factory makes its own), so one new draft invoice each, ids made in SQL.
    for _ in range(TENANTS):
        SegmentFactory(started_at=datetime(2026, 3, 2, tzinfo=UTC))

    invoices_refresh(period_start=date(2026, 3, 1), as_of=datetime(2026, 3, 5, tzinfo=UTC))

    ids = list(Invoice.objects.values_list("id", flat=True))
    assert len(set(ids)) == TENANTS
    assert {(invoice_id.version, invoice_id.variant) for invoice_id in ids} == {(4, uuid.RFC_4122)}
