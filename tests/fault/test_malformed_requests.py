"""500 malformed requests — huge bodies, invalid UTF-8, deeply nested JSON, wrong content types, very long headers,
overflowing numbers — sent as raw bytes to gunicorn: none is answered with a 5xx, the server stays up, and nothing
is written."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = [pytest.mark.fault, pytest.mark.slow]

MIB = 1024 * 1024


def send_raw(port: int, request: bytes, *, timeout: float = 15) -> int | None:
    """Sends bytes as they are; returns the status code of the answer (None if the server closed without one).

    A reader thread takes the answer as soon as it comes: a server that refuses a huge body answers before it has
    read it, and may reset the connection while the rest is still being sent."""
    answer = bytearray()

    def read(sock: socket.socket) -> None:
        try:
            while chunk := sock.recv(65536):
                answer.extend(chunk)
        except OSError:
            pass  # reset after the answer: what matters is what came before it

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        reader = threading.Thread(target=read, args=(sock,))
        reader.start()
        try:
            for start in range(0, len(request), MIB):
                sock.sendall(request[start : start + MIB])
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server stopped reading: it has answered, or will say why below
        reader.join(timeout)
    status_line = bytes(answer).split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None


def http(method: str, path: str | bytes, *, token: str, body: bytes = b"", content_type="application/json",
         headers: tuple[bytes, ...] = (), host: bytes = b"127.0.0.1") -> bytes:  # fmt: skip
    """A request as raw bytes; every part may be anything at all."""
    path = path.encode() if isinstance(path, str) else path
    lines = [
        method.encode() + b" " + path + b" HTTP/1.1",
        b"Host: " + host,
        b"Authorization: Bearer " + token.encode(),
        b"Connection: close",
    ]
    if content_type is not None:
        lines.append(b"Content-Type: " + (content_type.encode() if isinstance(content_type, str) else content_type))
    if body or method in ("POST", "PATCH", "PUT"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines += list(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def nested(levels: int, *, objects: bool = False) -> bytes:
    if objects:
        return b'{"a": ' * levels + b"1" + b"}" * levels
    return b"[" * levels + b"]" * levels


def malformed_requests(*, token: str, instance_id: str, flavor: str, image: str) -> list[bytes]:
    writes = [
        ("POST", "/api/v1/instances/"),
        ("POST", "/api/v1/ssh-keys/"),
        ("POST", f"/api/v1/instances/{instance_id}/actions/"),
        ("PATCH", f"/api/v1/instances/{instance_id}/"),
    ]
    # Each body is invalid for every endpoint (no usable name, type or key), so a request that is read at all is
    # refused: nothing may change whatever the server makes of it.
    bodies = [
        # huge
        b'{"name": "' + b"x" * (3 * MIB) + b'"}',
        b"[" + b"1," * (3 * MIB) + b"1]",
        # invalid UTF-8: a lone byte, a surrogate, an overlong encoding, a truncated sequence, UTF-16
        b'{"name": "\xff\xfe"}',
        b'{"name": "\xed\xa0\x80"}',
        b'{"name": "\xc0\xaf"}',
        b'{"name": "\xe2\x82"}',
        '{"name": ""}'.encode("utf-16"),
        b'{"\xc3": 1}',
        # deeply nested
        nested(33),
        nested(1000),
        nested(10_000),
        nested(100_000),
        nested(2000, objects=True),
        b'{"name": "", "flavor": ' + nested(5000) + b"}",
        # not JSON, or JSON of the wrong kind
        b"{",
        b"[1,]",
        b"\x00\x00\x00",
        b"null",
        b"[]",
        b'"a string"',
        b"NaN",
        b'{"name": NaN, "flavor": Infinity}',
        # overflowing numbers
        b"1e400",
        b'{"name": "", "flavor": 1e400, "image": -1e400}',
        b'{"name": 100000000000000000000000000000000000000000, "flavor": 99999999999999999999999}',
        b'{"type": "resize", "flavor": 1e308}',
        b'{"type": "stop", "flavor": 1e999}',
        b'{"ssh_keys": [18446744073709551617], "name": 18446744073709551617}',
        b'{"name": "", "public_key": 123456789012345678901234567890}',
        f'{{"name": "{"w" * 100_000}", "flavor": "{flavor}", "image": "{image}"}}'.encode(),
        b'{"name": "web\\u0000x", "public_key": "ssh-ed25519 \\ud800"}',
    ]
    content_types = [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "multipart/form-data; boundary=zzz",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-16",
        "application/json; charset=no-such-charset",
        b"application/json\xff",
        None,
    ]
    requests = []
    for method, path in writes:
        requests += [http(method, path, token=token, body=body) for body in bodies]
        # Bodies that are invalid even if read as JSON: whatever the server makes of the type, nothing may change.
        requests += [
            http(method, path, token=token, body=b'{"name": "", "type": "nap"}', content_type=content_type)
            for content_type in content_types
        ]
    numbers = ["1" + "0" * 40, "-" + "9" * 30, "1e400", "nan", "inf", "-0", "0x10", "1.5", "\u0661\u0662", "%00"]
    for number in numbers:
        for parameter in ("page", "per_page", "created_after", "created_before", "flavor", "state", "ordering"):
            requests.append(http("GET", f"/api/v1/instances/?{parameter}={number}", token=token))
        requests.append(http("GET", f"/api/v1/instances/{number}/", token=token))
        requests.append(http("GET", f"/api/v1/invoices/?period_from={number}", token=token))
    odd_paths = [b"/api/v1/instances/%FF%FE/", b"/api/v1/instances/\xff/", b"/api/v1/instances/?name=%FF%FE%00",
                 b"/api/v1/instances/?name=\xc0\xaf", b"/api/v1/%2e%2e/%2e%2e/etc/passwd", b"/api/v1/instances/;/",
                 b"/api/v1/" + b"a" * 3000 + b"/", b"/api/v1/instances/?" + b"x=1&" * 2000,
                 b"/api/v1/instances/" + b"9" * 100 + b"/actions/"]  # fmt: skip
    requests += [http(method, path, token=token) for path in odd_paths for method in ("GET", "POST", "DELETE")]
    long = b"x" * 9000
    headers = [
        (b"X-Long: " + long,),  # past gunicorn's field limit (8190)
        tuple(b"X-Many-%d: 1" % n for n in range(150)),  # past gunicorn's count limit (100)
        (b"Idempotency-Key: " + b"k" * 300,),
        (b"Idempotency-Key: \xff\xfe",),
        (b"Idempotency-Key: ",),
        (b"Accept: application/xml",),
        (b"Accept: text/html; q=0.\xff",),
        (b"Content-Length: -5",),
        (b"Content-Length: 99999999999999999999999",),
        (b"Transfer-Encoding: chunked",),
        (b"X-Forwarded-For: " + b"1.2.3.4, " * 500,),
        (b"Cookie: sessionid=" + b"\xff" * 100,),
    ]
    for extra in headers:
        requests.append(http("GET", "/api/v1/instances/", token=token, headers=extra))
        requests.append(http("POST", "/api/v1/instances/", token=token, body=b'{"name": ""}', headers=extra))
    for bad_token in ["x" * 8000, "\xff", "hgr_" + "0" * 500, "", "hgr_abc_def_ghi"]:
        requests.append(http("GET", "/api/v1/instances/", token=bad_token.encode("latin-1").decode("latin-1")))
    requests += [
        http("FOO", "/api/v1/instances/", token=token),
        http("GET", "/api/v1/instances/", token=token, host=b"elsewhere.example"),
        http("GET", "/api/v1/instances/", token=token, host=b"\xff" * 10),
    ]
    # Repeat the cheap ones up to 500 so the server sees them back to back, not one at a time.
    cheap = [request for request in requests if len(request) < 64 * 1024]
    while len(requests) < 500:
        requests.append(cheap[len(requests) % len(cheap)])
    return requests


# Written by the periodic samplers while the machine runs (traffic every minute), whatever the requests do.
SAMPLED_TABLES = {"network_trafficusage"}


def _counts(fault, tenant_id: str) -> dict[str, int]:
    """Rows of every table that names a tenant (this one's only), and of the tables any request could add to."""
    tables = fault.sql(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tenant_id'"
    )
    counts = {
        table: fault.sql(f'SELECT count(*) FROM "{table}" WHERE tenant_id = %s', [tenant_id])[0][0]
        for (table,) in tables
        if table not in SAMPLED_TABLES
    }
    for table in ("tenants_user", "tenants_tenant", "tenants_idempotencykey", "django_session", "compute_host"):
        counts[table] = fault.sql(f'SELECT count(*) FROM "{table}"')[0][0]
    return counts


def test_five_hundred_malformed_requests_get_no_5xx_and_write_nothing(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    fault.only_host(vcpus=8)
    launched = fault.launch(tenant, "target")
    assert launched.status_code == 202, launched.body
    instance_id = launched.json()["id"]
    fault.wait_for_states({instance_id: "running"}, timeout=30)
    before = _counts(fault, tenant.id)
    instance_before = fault.sql("SELECT state, updated_at FROM compute_instance WHERE id = %s", [instance_id])

    requests = malformed_requests(token=tenant.token, instance_id=instance_id, flavor=tenant.flavor, image=tenant.image)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda request: send_raw(fault.stack.port, request), requests))
    elapsed = time.monotonic() - started

    answered = [status for status in statuses if status is not None]
    server_errors = [(status, requests[n][:120]) for n, status in enumerate(statuses) if status and status >= 500]
    assert len(requests) >= 500
    assert server_errors == []
    # Only requests the web server itself refuses mid-body may go unanswered (it closes the connection); all else does.
    assert len(answered) >= len(requests) - 5, f"{len(requests) - len(answered)} unanswered"
    assert fault.stack.get("/healthz").status_code == 200
    assert all(process.poll() is None for process in fault.stack.processes.values())
    assert _counts(fault, tenant.id) == before
    assert fault.sql("SELECT state, updated_at FROM compute_instance WHERE id = %s", [instance_id]) == instance_before
    print(f"{len(requests)} malformed requests in {elapsed:.1f} s; statuses: {sorted(set(answered))}")
