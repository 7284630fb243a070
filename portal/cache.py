"""Django's Redis cache backend with one redis-py client per connection pool, made once per process, and counters
counted in one round trip.

Django's own client builds a new `redis.Redis` for every cache call; redis-py's constructor fills its table of reply
callbacks each time, which cost more CPU than the call's round trip (the catalog's version check runs on every worker
task and every launch). A redis-py client is safe to share between threads (it takes a connection from the pool
for each command) and its pool notices a fork, so one per pool is enough.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def count_windows(self, windows: list[tuple[str, int]]) -> list[int]:
        """Adds one to each (key, seconds) counter, which expires `seconds` + 1 after its first count, and returns
        the counts: the same as add(key, 0) then incr(key) for each, in one round trip (the API's rate limiter counts
        two to four windows on every request)."""
        pipeline = self._cache.get_client(write=True).pipeline(transaction=False)
        for key, seconds in windows:
            stored_key = self.make_and_validate_key(key)
            pipeline.set(stored_key, 0, ex=seconds + 1, nx=True)
            pipeline.incr(stored_key)
        return pipeline.execute()[1::2]
