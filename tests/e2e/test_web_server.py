"""gunicorn as `make run` and production start it (portal/gunicorn.conf.py), on a live socket on 127.0.0.1."""

import http.client
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

RECYCLE_AFTER = 20
CLIENTS = 4
REQUESTS_PER_CLIENT = 100


@pytest.fixture
def web(tmp_path):
    stack = Stack(tmp_path)
    # Rate limits would answer 429 before the API does; this test wants every request to reach Django.
    stack.env.update(API_RATE_LIMIT_BURST_PER_MINUTE="100000", API_RATE_LIMIT_WRITES_BURST_PER_MINUTE="100000")
    try:
        # Two workers (the Stack's GUNICORN_WORKERS), each recycled after RECYCLE_AFTER requests.
        stack.start_web("--max-requests", str(RECYCLE_AFTER), "--max-requests-jitter", "0")
        stack.wait_for(lambda: stack.get("/accounts/login/").status_code == 200, what="the web server")
        yield stack
    finally:
        stack.stop()


def _keep_alive_client(port: int) -> tuple[Counter, list[str]]:
    """Pages and API writes over one keep-alive connection, opened again only when the server closes it politely."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses, failures = Counter(), []
    for n in range(REQUESTS_PER_CLIENT):
        method, path, body = ("POST", "/api/v1/instances/", b"{}") if n % 3 == 0 else ("GET", "/accounts/login/", None)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{method} {path}: {error!r}")
            connection.close()
    connection.close()
    return statuses, failures


def test_recycling_workers_drop_no_request(web):
    """Each worker is replaced every RECYCLE_AFTER requests; the requests it had already accepted, or that arrive on
    its keep-alive connections, are still answered (stock uvicorn, like gunicorn's gthread worker, reset them)."""
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(_keep_alive_client, [web.port] * CLIENTS))

    failures = [failure for _, client_failures in results for failure in client_failures]
    statuses = sum((client_statuses for client_statuses, _ in results), Counter())
    assert failures == [], f"{len(failures)} of {CLIENTS * REQUESTS_PER_CLIENT} requests failed: {failures[:5]}"
    # Anonymous API writes are refused, not lost; the log-in page is served.
    assert set(statuses) <= {200, 401, 403}, statuses
    # Workers were replaced again and again meanwhile. A worker answers what it accepted before it goes, so each
    # handles somewhat more than RECYCLE_AFTER requests (about half the nominal count of replacements happen), and
    # the last one may log its replacement just after the last answer: a quarter of the nominal count is the floor.
    recycled = web.logs["web"].read_text().count("Maximum request limit")
    assert recycled >= CLIENTS * REQUESTS_PER_CLIENT // RECYCLE_AFTER // 4, web.tail_logs()


def test_a_client_that_half_closes_after_its_request_gets_the_answer(web):
    """Sending a request and then shutting the sending side (as curl --no-keepalive, proxies and raw clients do) is
    still answered: stock uvicorn closes the connection on that end-of-file before the application has answered."""
    request = b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    statuses = []
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        statuses.append(answer.split(b"\r\n", 1)[0])
    assert set(statuses) == {b"HTTP/1.1 200 OK"}, statuses
