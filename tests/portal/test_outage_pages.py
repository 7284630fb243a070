"""What operators and users still get while a backing service is away."""

from django.test import RequestFactory

from portal.queue import worker_heartbeat_or_unknown
from portal.views_ops import server_error
from tests.factories import UserFactory


def test_the_500_page_needs_no_database(db, django_assert_num_queries):
    request = RequestFactory().get("/instances/")
    request.user = UserFactory()
    with django_assert_num_queries(0):  # no context processor runs: it renders while the database is down
        response = server_error(request)
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_the_heartbeat_reads_as_unknown_when_the_cache_is_down(settings):
    settings.CACHES = {"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    heartbeat = worker_heartbeat_or_unknown()
    assert heartbeat.last_seen is None and heartbeat.latency_seconds is None
