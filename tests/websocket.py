"""WebSocket and HTTP clients for ASGI applications in tests (channels.testing needs daphne, which Hangar does not
use)."""

import asyncio
import threading
from urllib.parse import unquote, urlparse

from asgiref.testing import ApplicationCommunicator


def run_async(scenario):
    """Runs `scenario()` (a coroutine function) to its end on an event loop of its own thread, and returns its result.

    Not async_to_sync: once a browser test has run, Playwright's event loop lives in the main thread for the rest of
    the session, and asgiref refuses to start another one there.
    """
    outcome = {}

    def target():
        try:
            outcome["result"] = asyncio.run(scenario())
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class WebsocketCommunicator(ApplicationCommunicator):
    def __init__(self, application, path: str, headers=None):
        parsed = urlparse(path)
        self.scope = {
            "type": "websocket",
            "path": unquote(parsed.path),
            "query_string": parsed.query.encode(),
            "headers": headers or [],
            "subprotocols": [],
        }
        super().__init__(application, self.scope)

    async def connect(self, timeout: float = 5) -> tuple[bool, object]:
        """(True, subprotocol) once accepted, (False, close code) if refused."""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, response.get("subprotocol")

    async def receive_or_none(self, timeout: float) -> dict | None:
        """The application's next message, or None after `timeout` — unlike receive_output(), waiting in vain does
        not cancel the application (a quiet console is not a dead one)."""
        if self.future.done():
            self.future.result()  # raises what ended the application
        try:
            return await asyncio.wait_for(self.output_queue.get(), timeout)
        except TimeoutError:
            return None

    async def send_to(self, *, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


async def http_request(application, method: str, path: str, *, body: bytes = b"", headers=()) -> dict:
    """One HTTP request through `application`: {"status", "headers" (a dict, names in lower case), "body"}."""
    parsed = urlparse(path)
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": unquote(parsed.path),
        "raw_path": parsed.path.encode(),
        "query_string": parsed.query.encode(),
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(10)
    chunks = []
    while True:
        message = await communicator.receive_output(10)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    # What uvicorn's receive() answers once the response is complete.
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait()
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return {"status": start["status"], "headers": headers, "body": b"".join(chunks)}
