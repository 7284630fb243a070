import shutil

import pytest


@pytest.fixture
def live_redis(tmp_path):
    """A private redis-server on a free port (never the machine's own)."""
    from tests.fault.servers import RedisServer

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
