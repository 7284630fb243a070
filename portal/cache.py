"""Django's Redis cache backend with one redis-py client per connection pool, made once per process, and counters
counted in one round trip.

Django's own client builds a new `redis.Redis` for every cache call; redis-py's constructor fills its table of reply
callbacks each time, which cost more CPU than the call's round trip (the catalog's version check runs on every worker
task and every launch). And under ASGI, Django makes a new cache object, with new connection pools, for every
request (`caches` is local to the request's context): each request connected to Redis anew. A redis-py client is
safe to share between threads (it takes a connection from the pool for each command) and its pool notices a fork,
so the process keeps one client, with its pool, per server and options, whichever cache object asks.
"""

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

# Each process's redis-py clients, by server URL and pool options: shared by every cache object of the process.
_clients: dict = {}
_clients_lock = threading.Lock()


class RedisCacheClient(DjangoRedisCacheClient):
    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        shared = (self._servers[index], repr(sorted(self._pool_options.items(), key=lambda item: item[0])))
        client = _clients.get(shared)
        if client is None:
            with _clients_lock:
                client = _clients.get(shared)
                if client is None:
                    client = _clients[shared] = self._client(connection_pool=self._get_connection_pool(write))
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
