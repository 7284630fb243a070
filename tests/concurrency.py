"""Racing threads against PostgreSQL: each thread has its own connection, and all start at the same moment."""

import threading

from django.db import connection

from portal.errors import ServiceError


def race(count: int, call) -> list[str]:
    """Runs `call(n)` for n in range(count) at the same moment; returns "ok" or the service error's code of each."""
    barrier = threading.Barrier(count)
    results: list[str] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            barrier.wait()
            call(n)
            outcome = "ok"
        except ServiceError as error:
            outcome = error.code
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
