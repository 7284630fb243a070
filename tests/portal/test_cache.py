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


def test_every_cache_object_of_the_process_shares_the_client_of_its_server():
    """Under ASGI, Django makes a cache object per request: they must not each open connections of their own."""
    first, second = RedisCache(UNREACHABLE, {}), RedisCache(UNREACHABLE, {})
    assert first._cache.get_client("key") is second._cache.get_client("key")
    assert RedisCache("redis://127.0.0.1:1/1", {})._cache.get_client("key") is not first._cache.get_client("key")


def test_django_s_own_backend_makes_a_client_per_call():
    """What the backend is for: if Django starts reusing its client, this one can go."""
    cache = DjangoRedisCache(UNREACHABLE, {})
    assert cache._cache.get_client("key") is not cache._cache.get_client("key")


def test_a_refused_connection_raises_as_with_django_s_backend():
    with pytest.raises(redis.ConnectionError):
        RedisCache(UNREACHABLE, {}).get("key")


def test_counters_count_every_window_in_one_round_trip_and_expire_from_their_first_count(live_redis):
    cache = RedisCache(live_redis.url(0), {})
    windows = [("minute", 60), ("hour", 3600)]
    assert cache.count_windows(windows) == [1, 1]
    client = cache._cache.get_client(write=True)
    first_ttl = client.ttl(cache.make_and_validate_key("hour"))
    assert 3600 <= first_ttl <= 3601
    client.expire(cache.make_and_validate_key("hour"), 100)  # a later count must not set the expiry again
    assert cache.count_windows(windows) == [2, 2]
    assert client.ttl(cache.make_and_validate_key("hour")) <= 100
    assert cache.get("minute") == 2  # the counters are ordinary cache integers
    client.delete(cache.make_and_validate_key("minute"))  # expired: counting starts over
    assert cache.count_windows(windows) == [1, 3]
