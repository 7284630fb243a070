"""The fault suite: faults injected into real processes — SIGKILLed workers, a stopped Redis, a restarted
PostgreSQL, duplicated messages, racing requests, malformed input — against a whole stack (gunicorn, a Celery
worker, beat) on a PostgreSQL cluster and a Redis server of its own.

It runs wherever the PostgreSQL server binaries and redis-server are installed, whatever DATABASE_URL says (it
never uses the suite's database), and is skipped, saying what is missing, elsewhere.
"""

import pytest

from tests.e2e.stack import Stack
from tests.fault.harness import DATABASE, STACK_ENV, Fault
from tests.fault.servers import PostgresCluster, RedisServer, missing_prerequisites


def pytest_collection_modifyitems(config, items):
    fault_items = [item for item in items if "fault" in item.keywords]
    if not fault_items:
        return
    missing = missing_prerequisites()
    if missing:
        skip = pytest.mark.skip(
            reason=f"the fault suite needs {', '.join(missing)} (apt-get install postgresql redis-server)"
        )
        for item in fault_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fault(tmp_path_factory):
    """One stack for the whole suite: each scenario brings its own organisation and host, and puts back what it
    stopped (starting a stack is the slowest part: migrations alone take ~10 s)."""
    postgres = PostgresCluster().init()
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    stack = None
    try:
        postgres.start()
        postgres.execute(f'CREATE DATABASE "{DATABASE}"')
        redis.start()
        urls = {
            "DATABASE_URL": postgres.url(DATABASE),
            # One Redis for broker and cache, as README lays it out: its outage takes both away.
            "CELERY_BROKER_URL": redis.url(0),
            "CACHE_URL": redis.url(1),
        }
        stack = Stack(tmp_path_factory.mktemp("stack"), urls=urls, env=STACK_ENV)
        yield Fault(stack.start(), postgres, redis)
    finally:
        if stack is not None:
            for name in list(stack.processes):
                stack.kill(name)  # throw-away processes: no need to wait for them to finish their work
            stack.stop()
        redis.stop()
        postgres.destroy()


@pytest.fixture
def running_stack(fault):
    """The stack with every server up and every process running, whatever the previous scenario left behind."""
    if not fault.postgres.answers():
        fault.postgres.start()
    if not fault.redis.answers():
        fault.redis.start()
    starters = {"web": fault.stack.start_web, "worker": fault.stack.start_worker, "beat": fault.stack.start_beat}
    for name, start in starters.items():
        process = fault.stack.processes.get(name)
        if process is None or process.poll() is not None:
            fault.stack.processes.pop(name, None)
            start()
        else:
            fault.stack.resume(name)  # in case a scenario stopped short while it was paused
    fault.stack.wait_for(lambda: fault.stack.get("/healthz").status_code == 200, what="a healthy stack")
    return fault
