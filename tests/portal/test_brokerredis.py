"""The Redis broker's channels keep one redis-py client each: publishing, delivering and acknowledging build none
per message, and every message still arrives once and is acknowledged."""

import pytest
import redis
from kombu import Connection, Exchange, Producer, Queue
from kombu.transport import redis as kombu_redis

import portal.celery  # noqa: F401  (registers the transports of broker URLs)
from portal import brokerredis

MESSAGES = 20


@pytest.fixture
def clients_made(monkeypatch):
    """How many redis-py clients have been built since the test began."""
    made = []
    build = redis.Redis.__init__

    def counted(self, *args, **kwargs):
        made.append(self)
        build(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counted)
    return made


def _round_trip(url: str, transport=None) -> tuple[list[str], int]:
    """Publishes MESSAGES messages, takes and acknowledges each: (the bodies taken, unacknowledged left)."""
    queue = Queue("jobs", Exchange("jobs", type="direct"), routing_key="jobs")
    with Connection(url, transport=transport) as connection:
        channel = connection.channel()
        queue(channel).declare()
        producer = Producer(channel, exchange=queue.exchange, routing_key="jobs")
        for number in range(MESSAGES):
            producer.publish({"n": number}, serializer="json")
        taken = []
        while (message := queue(channel).get(no_ack=False)) is not None:
            taken.append(message.payload["n"])
            message.ack()
        unacked = channel.client.hlen(channel.unacked_key)
        channel.close()
    return taken, unacked


def test_redis_broker_urls_use_our_transport():
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0"):
        assert isinstance(Connection(url).transport, brokerredis.Transport)


def test_a_channel_publishes_delivers_and_acknowledges_with_one_client(live_redis, clients_made):
    taken, unacked = _round_trip(live_redis.url(0))

    assert taken == list(range(MESSAGES))
    assert unacked == 0  # every delivery's index entry was removed by its acknowledgement
    # The channel's own client for its event loop and the one it shares for everything else (kombu: one per command).
    assert len(clients_made) <= 3


def test_kombu_s_own_channel_builds_a_client_per_command(live_redis, clients_made):
    """What the transport is for: if kombu starts reusing its client, brokerredis can go."""
    taken, unacked = _round_trip(live_redis.url(0), transport=kombu_redis.Transport)

    assert (taken, unacked) == (list(range(MESSAGES)), 0)
    assert len(clients_made) >= 3 * MESSAGES  # each publish, delivery and acknowledgement


def test_a_channel_whose_pool_was_replaced_builds_its_client_again(live_redis):
    with Connection(live_redis.url(0)) as connection:
        channel = connection.channel()
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as again:
            assert again is first
        channel._pool = None  # what kombu does when it drops the channel's connections
        with channel.conn_or_acquire() as client:
            assert client is not first
            assert client.connection_pool is channel.pool
            assert client.ping()
        channel.close()
