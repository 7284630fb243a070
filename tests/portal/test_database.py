"""PostgreSQL prepares the hot statements written in SQL once a connection has run them a few times; the ORM's,
bound client-side, are planned on every run."""

import pytest
from django.conf import settings
from django.db import connection

from portal import env, sql
from tenants.models import Tenant

POSTGRES_URL = "postgres://hangar@db.example:5432/hangar"


def test_postgres_connections_prepare_after_the_threshold_and_never_at_zero(monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", POSTGRES_URL)
    config = env.env_database("TEST_DATABASE_URL", "", sqlite_options={}, prepare_threshold=5)
    assert config["OPTIONS"] == {"prepare_threshold": 5}
    never = env.env_database("TEST_DATABASE_URL", "", sqlite_options={}, prepare_threshold=0)
    assert never["OPTIONS"] == {"prepare_threshold": None}  # psycopg: never prepare
    monkeypatch.setenv("TEST_DATABASE_URL", POSTGRES_URL + "?sslmode=require")
    with_url_options = env.env_database("TEST_DATABASE_URL", "", sqlite_options={}, prepare_threshold=5)
    assert with_url_options["OPTIONS"] == {"prepare_threshold": 5, "sslmode": "require"}


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_hot_statement_is_prepared_once_its_connection_has_run_it_often_and_orm_ones_never_are(tenant):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold  # the suite runs with the production setting
    statement = (
        f"SELECT {sql.columns(Tenant, ['name'])} FROM {sql.table(Tenant)} WHERE {sql.columns(Tenant, ['id'])} = %s"
    )

    def run() -> str:
        with sql.prepared_cursor(connection) as cursor:
            cursor.execute(statement, [tenant.pk])
            return cursor.fetchone()[0]

    for _ in range(threshold - 1):
        assert run() == tenant.name
    assert not [text for text in _prepared() if '"tenants_tenant"' in text]
    for _ in range(threshold + 1):
        assert run() == tenant.name
        Tenant.objects.filter(pk=tenant.pk).exists()  # the ORM's: bound client-side, never prepared
    prepared = [text for text in _prepared() if '"tenants_tenant"' in text]
    assert prepared == [statement.replace("%s", "$1")]
