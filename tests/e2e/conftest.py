"""Browser tests: the Chromium fixtures live in tests/browser.py, shared with the apps' own browser tests.

Here: one whole stack (web, a separate worker and beat, as `make run` starts them) for the whole run, and pages
on it. Flows that need a real worker use `stack_page`; flows that do not use `new_page` (the in-process live
server, where Celery runs inline). Either way, `tests/e2e/pages.check_page` checks each page state.
"""

import pytest

from tests.browser import CSP_RECORDER
from tests.e2e.pages import DESKTOP, keep_last_pages
from tests.e2e.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        # Beat looks for backups that fell due, and sends the worker heartbeat, every 2 s here (by default every
        # minute and every 30 s).
        running = Stack(
            tmp_path_factory.mktemp("stack"), env={"BACKUPS_DUE_SECONDS": "2", "WORKER_HEARTBEAT_SECONDS": "2"}
        )
        try:
            yield running.start()
        finally:
            running.stop()


@pytest.fixture
def stack_page(browser, stack, request):
    """Pages on the stack in fresh browser contexts, each collecting the errors its console logs."""
    contexts = []

    def make():
        context = browser.new_context(base_url=stack.url, viewport=DESKTOP)
        context.set_default_timeout(20_000)
        context.add_init_script(CSP_RECORDER)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
        return page

    yield make
    keep_last_pages(contexts, request.node.name)
    for context in contexts:
        context.close()


@pytest.fixture
def frozen_rows_flushable(transactional_db):
    """For transactional tests that issue invoices or write the credit ledger: on SQLite, the triggers that freeze
    those rows would refuse the flush that empties the database after the test (PostgreSQL truncates, which fires
    no row trigger). This empties every table first, with the triggers set aside for that moment only."""
    yield
    from django.db import connection, transaction

    if connection.vendor != "sqlite":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        triggers = cursor.fetchall()
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')  # write-ok: test teardown, the triggers are recreated below
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            cursor.execute(f'DELETE FROM "{table}"')  # write-ok: test teardown, as the flush that follows would
        for _, sql in triggers:
            cursor.execute(sql)  # write-ok: test teardown
