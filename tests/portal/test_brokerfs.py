"""The embedded broker never shows a worker a message that is still being written."""

from queue import Empty

import pytest
from kombu import Connection
from kombu.transport import resolve_transport

from portal import brokerfs


@pytest.fixture
def channel(tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "store_processed": False,
    }
    with Connection("filesystem://", transport_options=options) as connection:
        yield connection.default_channel


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
