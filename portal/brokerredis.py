"""The Redis broker's transport: kombu's, with one redis-py client per channel instead of one per command.

kombu's Redis channel builds a new `redis.Redis` for every command it sends outside its event loop: each publish,
and twice for each message a worker takes (the entry in the index of unacknowledged messages when it is delivered,
and its removal when it is acknowledged). redis-py's constructor fills its table of reply callbacks each time,
which cost a worker's main process more CPU than the round trips themselves. A redis-py client holds no connection
of its own (it borrows one from the channel's pool for each command, pipeline or transaction) and is safe to share
between threads, so each channel keeps one, made again only if the channel's pool is replaced. The same reasoning
as `portal.cache` for the cache's client.

`portal.celery` makes this the transport of `redis://` and `rediss://` broker URLs.
"""

from __future__ import annotations

from contextlib import contextmanager

from kombu.transport import redis


class Channel(redis.Channel):
    _shared_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(redis.Transport):
    Channel = Channel
