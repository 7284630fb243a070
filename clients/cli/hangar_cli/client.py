"""The API over httpx: the token, idempotency keys on every POST, the error shape turned into exit codes, pages
followed to the end, and resources found by name or id."""

from __future__ import annotations

import re
import time
import uuid

import httpx

from hangar_cli import __version__
from hangar_cli.errors import AUTH, NOT_FOUND, REFUSED, SERVER, USAGE, HangarError

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RETRY_STATUSES = {429, 502, 503, 504}
MAX_RETRY_AFTER = 10  # seconds; a longer wait is reported rather than slept through


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status >= 500:
        return SERVER
    return REFUSED


class Client:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        as_json: bool = False,
    ):
        self.url = url
        self.as_json = as_json
        self.http = httpx.Client(
            base_url=f"{url}/api/v1/",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"hangar-cli/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )
        self._cache: dict[str, list[dict]] = {}

    # -- requests --------------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json=None, params=None) -> httpx.Response:
        headers = {}
        if method == "POST":
            # One key for every attempt: a retry after a lost answer cannot act twice.
            headers["Idempotency-Key"] = str(uuid.uuid4())
        path = path.lstrip("/") if not path.startswith("http") else path
        for attempt in range(3):
            try:
                response = self.http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TimeoutException as error:
                raise HangarError(
                    f"{self.url} did not answer in time ({error.__class__.__name__}).", exit_code=SERVER
                ) from error
            except httpx.TransportError as error:
                if attempt < 2 and isinstance(error, httpx.ConnectError) and method in ("GET", "POST"):
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise HangarError(
                    f"Cannot reach {self.url}: {error}.",
                    exit_code=SERVER,
                    hint="Check HANGAR_URL (or the profile's url) and that the server is running.",
                ) from error
            retry_after = response.headers.get("Retry-After", "")
            if (
                response.status_code in RETRY_STATUSES
                and attempt < 2
                and retry_after.isdigit()
                and int(retry_after) <= MAX_RETRY_AFTER
            ):
                time.sleep(int(retry_after))
                continue
            break
        if response.status_code >= 400:
            raise self.error(response)
        return response

    def error(self, response: httpx.Response) -> HangarError:
        status = response.status_code
        try:
            body = response.json()["error"]
            code, message, details = body.get("code", ""), body.get("message", ""), body.get("details") or {}
        except (ValueError, KeyError, TypeError):
            code, details = "", {}
            message = f"The server answered {status} {response.reason_phrase} without an error body."
        if status == 401 and not message:
            message = "Not authenticated."
        return HangarError(
            message or f"HTTP {status}",
            exit_code=exit_code_for(status),
            code=code,
            status=status,
            details=details,
            as_json=self.as_json,
        )

    def get(self, path: str, **params) -> dict:
        return self._json(self.request("GET", path, params=params or None))

    def post(self, path: str, body: dict | None = None) -> dict:
        return self._json(self.request("POST", path, json=body or {}))

    def post_accepted(self, path: str, body: dict | None = None) -> tuple[dict, str]:
        """A POST answered 202: its body and the URL in `Location` (where to follow the work)."""
        response = self.request("POST", path, json=body or {})
        return self._json(response), response.headers.get("Location", "")

    def delete_accepted(self, path: str) -> tuple[dict, str]:
        response = self.request("DELETE", path)
        return self._json(response), response.headers.get("Location", "")

    def patch(self, path: str, body: dict) -> dict:
        return self._json(self.request("PATCH", path, json=body))

    def delete(self, path: str) -> dict:
        return self._json(self.request("DELETE", path))

    def _json(self, response: httpx.Response) -> dict:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError as error:
            raise HangarError(
                f"The server's answer to {response.request.method} {response.request.url.path} is not JSON.",
                exit_code=SERVER,
            ) from error

    def list(self, collection: str, params: list[tuple[str, str]] | None = None) -> list[dict]:
        """Every item of a list, following `links.next` to the last page."""
        items: list[dict] = []
        url: str | None = f"{collection}/"
        query = httpx.QueryParams([*(params or []), ("per_page", "200")])
        while url:
            body = self._json(self.request("GET", url, params=query))
            items += body.get("data", [])
            url = (body.get("links") or {}).get("next")
            query = None  # the next link carries the query
        return items

    def cached_list(self, collection: str) -> list[dict]:
        if collection not in self._cache:
            self._cache[collection] = self.list(collection)
        return self._cache[collection]

    # -- finding things --------------------------------------------------------------------------------------------

    def find(self, collection: str, ref: str, *, kind: str, key: str = "name", catalog: bool = False) -> dict:
        """One resource by id, or by exact name (or `key`), with errors that say what to do."""
        if UUID_RE.match(ref):
            if catalog:
                for item in self.cached_list(collection):
                    if item["id"] == ref.lower():
                        return item
            else:
                return self.get(f"{collection}/{ref}/")
        items = self.cached_list(collection) if catalog else self.list(collection, self._name_filter(collection, ref))
        matches = [item for item in items if str(item.get(key, "")) == ref]
        if not matches:
            matches = [item for item in items if str(item.get(key, "")).lower() == ref.lower()]
        if not matches:
            names = sorted(str(item.get(key)) for item in items)[:10]
            listed = f" Known: {', '.join(names)}." if names and catalog else ""
            raise HangarError(
                f"No {kind} named {ref!r}.{listed}",
                exit_code=NOT_FOUND,
                code="not_found",
                hint="" if catalog else f"`hangar {collection_command(collection)} list` shows them.",
            )
        if len(matches) > 1:
            ids = ", ".join(item["id"] for item in matches)
            raise HangarError(f"Several {kind}s are named {ref!r}: use the id ({ids}).", exit_code=USAGE)
        return matches[0]

    @staticmethod
    def _name_filter(collection: str, ref: str) -> list[tuple[str, str]]:
        return [("name", ref)] if collection == "instances" else []

    def name_of(self, collection: str, item_id: str | None) -> str:
        """A catalog or resource name for an id, for tables; the id itself when it cannot be found."""
        if not item_id:
            return ""
        for item in self.cached_list(collection):
            if item.get("id") == item_id:
                return item.get("name") or item.get("address") or item_id
        return item_id


def collection_command(collection: str) -> str:
    return {"ssh-keys": "keys", "ips": "addresses"}.get(collection, collection)
