"""The Redis cache backend: one redis-py client per connection pool, not one per cache call."""

import pytest
import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from portal.cache import RedisCache

# Nothing listens on port 1: making a client connects nowhere, and a command is refused at once.
UNREACHABLE = "redis://127.0.0.1:1/0"


def test_every_call_reuses_the_client_of_its_pool():
    cache = RedisCache(UNREACHABLE, {})
    client = cache._cache.get_client("key")
    assert isinstance(client, redis.Redis)
    assert cache._cache.get_client("other") is client
    assert cache._cache.get_client("key", write=True) is client  # one server: reads and writes share its pool


def test_django_s_own_backend_makes_a_client_per_call():
    """What the backend is for: if Django starts reusing its client, this one can go."""
    cache = DjangoRedisCache(UNREACHABLE, {})
    assert cache._cache.get_client("key") is not cache._cache.get_client("key")


def test_a_refused_connection_raises_as_with_django_s_backend():
    with pytest.raises(redis.ConnectionError):
        RedisCache(UNREACHABLE, {}).get("key")
