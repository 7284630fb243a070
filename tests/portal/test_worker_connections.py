"""Workers keep their database connection between tasks and check it around each one, as Django does per request."""

from types import SimpleNamespace
from unittest import mock

from django.conf import settings

from portal import celery


def _task(*, eager: bool):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celerys_fixup_keeps_the_connection_from_task_to_task():
    assert settings.CELERY_DB_REUSE_MAX >= 100
    assert celery.app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX


def test_a_worker_task_checks_the_connections_as_a_request_does():
    with mock.patch.object(celery, "close_old_connections") as close_old:
        celery._check_database_connections(sender=_task(eager=False))
    close_old.assert_called_once_with()


def test_an_eager_task_leaves_its_callers_connection_alone():
    with mock.patch.object(celery, "close_old_connections") as close_old:
        celery._check_database_connections(sender=_task(eager=True))
    close_old.assert_not_called()
