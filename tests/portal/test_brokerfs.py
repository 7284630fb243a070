"""The embedded broker never shows a worker a message that is still being written, and never holds a worker's
next message while the worker's loop has acknowledgements to make."""

import socket
import uuid
from queue import Empty

import pytest
from kombu import Connection, Exchange, Queue
from kombu.transport import resolve_transport
from kombu.transport.virtual import base as virtual_base

from portal import brokerfs


@pytest.fixture
def connection(tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    with Connection("filesystem://", transport_options=options) as connection:
        yield connection


@pytest.fixture
def channel(connection):
    return connection.default_channel


def test_filesystem_urls_use_the_whole_message_transport(channel):
    assert resolve_transport("filesystem") is brokerfs.Transport
    assert isinstance(channel, brokerfs.Channel)


def test_a_message_being_written_is_invisible_until_complete(channel, monkeypatch):
    seen_while_writing = []
    real_replace = brokerfs.os.replace

    def replace(source, target):
        # The message is fully written but not yet renamed into the queue: a consumer polling now finds nothing.
        seen_while_writing.append(_try_get(channel, "celery"))
        real_replace(source, target)

    monkeypatch.setattr(brokerfs.os, "replace", replace)
    channel._put("celery", {"body": "x" * 100_000})

    assert seen_while_writing == [None]
    assert channel._get("celery") == {"body": "x" * 100_000}


def _try_get(channel, queue):
    try:
        return channel._get(queue)
    except Empty:
        return None


def test_a_worker_whose_prefetch_is_unacknowledged_gets_its_loop_back_after_one_polling_interval(
    connection, monkeypatch
):
    # Names of its own: kombu keeps the bindings it declared in a process for the whole process, and a binding
    # another test declared would not be written to this test's broker folder.
    name = f"prefetch-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name), name)
    for number in (1, 2):
        connection.Producer().publish({"n": number}, exchange=queue.exchange, routing_key=name, declare=[queue])
    connection.default_channel.basic_qos(0, 1, False)  # a worker that holds one message at a time
    received = []
    consumer = connection.Consumer(queue, callbacks=[lambda body, message: received.append(message)])
    consumer.consume()
    connection.drain_events(timeout=1)
    assert len(received) == 1

    # Its one message is unacknowledged: instead of polling until the loop's timeout (the loop acknowledges the
    # finished tasks only between two calls), the transport gives the loop back after one polling interval.
    clock = FakeClock()
    monkeypatch.setattr(virtual_base, "monotonic", clock.monotonic)
    monkeypatch.setattr(virtual_base, "sleep", clock.sleep)
    with pytest.raises(socket.timeout):
        connection.drain_events(timeout=30)
    assert 0.1 <= clock.now <= 0.2 and len(received) == 1

    received[0].ack()
    connection.drain_events(timeout=1)
    assert sorted(message.payload["n"] for message in received) == [1, 2]


class FakeClock:
    """kombu's polling clock, advanced only by its sleeps."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
