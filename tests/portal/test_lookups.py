"""AnyOf: membership in a list of values, as one array parameter on PostgreSQL and IN (…) elsewhere."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from portal.lookups import AnyOf
from tenants.models import Membership, Tenant, User
from tests.factories.tenants import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_finds_the_rows_whose_value_is_listed_by_uuid_and_by_integer_keys():
    tenants = TenantFactory.create_batch(4)
    users = UserFactory.create_batch(3)
    wanted = [tenants[0].pk, tenants[2].pk]
    assert set(Tenant.objects.filter(AnyOf(F("id"), wanted)).values_list("pk", flat=True)) == set(wanted)
    assert list(User.objects.filter(AnyOf(F("id"), [users[1].pk]))) == [users[1]]


def test_it_follows_a_foreign_key_column():
    tenant, other = TenantFactory.create_batch(2)
    members = [Membership.objects.create(user=UserFactory(), tenant=t, role="owner") for t in (tenant, other, tenant)]
    found = Membership.objects.filter(AnyOf(F("tenant_id"), [tenant.pk]))
    assert set(found) == {members[0], members[2]}


def test_an_empty_list_matches_nothing_without_a_query():
    TenantFactory()
    with CaptureQueriesContext(connection) as captured:
        assert list(Tenant.objects.filter(AnyOf(F("id"), []))) == []
    assert captured.captured_queries == []


def test_postgresql_gets_one_parameter_however_many_values():
    tenants = TenantFactory.create_batch(3)
    with CaptureQueriesContext(connection) as captured:
        list(Tenant.objects.filter(AnyOf(F("id"), [t.pk for t in tenants])))
    sql = captured.captured_queries[0]["sql"]
    if connection.vendor == "postgresql":
        assert "= ANY(" in sql and " IN (" not in sql
    else:
        assert " IN (" in sql
