"""A fake Hangar API for httpx.MockTransport: routes, canned answers and a record of what was sent."""

import json
import re
from dataclasses import dataclass, field

import httpx

URL = "http://hangar.test"
FLAVORS = [
    {"id": "11111111-1111-4111-8111-111111111111", "name": "c1.micro", "monthly_price": "4.50"},
    {"id": "22222222-2222-4222-8222-222222222222", "name": "c1.small", "monthly_price": "7.90"},
]
IMAGES = [{"id": "33333333-3333-4333-8333-333333333333", "name": "Debian 12"}]


def page(items, next_url=None):
    return {"data": items, "meta": {"total": len(items), "page": 1, "per_page": 200}, "links": {"next": next_url}}


def error(status, code, message, details=None):
    return httpx.Response(status, json={"error": {"code": code, "message": message, "details": details or {}}})


def instance(**fields):
    return {
        "id": "44444444-4444-4444-8444-444444444444",
        "name": "web-1",
        "state": "running",
        "flavor": FLAVORS[0]["id"],
        "image": IMAGES[0]["id"],
        "region": "default",
        "private_ip": "10.0.1.2",
        "public_ip": None,
        "addresses": [],
        "firewalls": [],
        "ssh_keys": [],
        "labels": {},
        **fields,
    }


@dataclass
class FakeApi:
    """Routes (method, path regex) to handlers; records every request."""

    routes: list = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, answer):
        """`answer`: a Response, a JSON body (200), a list of those (one per call, the last repeats), or a
        callable(request) returning one."""
        self.routes.insert(
            0, (method, re.compile(f"^/api/v1/{path}$"), answer if not isinstance(answer, list) else list(answer))
        )
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, pattern, answer in self.routes:
            if method == request.method and pattern.match(request.url.path):
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if callable(answer):
                    answer = answer(request)
                if isinstance(answer, httpx.Response):
                    return answer
                return httpx.Response(200, json=answer)
        return error(404, "not_found", f"No route {request.method} {request.url.path} in the fake API.")

    def sent(self, method: str, path: str) -> list[dict]:
        """The JSON bodies of the requests sent to `path`."""
        return [
            json.loads(r.content or b"null")
            for r in self.requests
            if r.method == method and r.url.path == f"/api/v1/{path}"
        ]
