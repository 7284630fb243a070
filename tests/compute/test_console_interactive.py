"""The interactive console: the ticket endpoint and the WebSocket consumer against a simulated machine."""

import asyncio
import json
import logging

import pytest
from channels.routing import URLRouter
from django.urls import reverse

from compute.console import consumers
from compute.console.routing import websocket_urlpatterns
from compute.console.sessions import console_ticket
from compute.models import InstanceState
from tests.conftest import login_client
from tests.websocket import WebsocketCommunicator, run_async

pytestmark = pytest.mark.django_db(transaction=True)


def ticket_url(instance) -> str:
    return reverse("compute:instance-console-ticket", kwargs={"pk": instance.pk})


class Terminal:
    """A WebSocket client of the console consumer: collects what the machine writes and the notices."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.screen = ""
        self.notices: list[dict] = []
        self.closed_with = None

    async def pump(self, *, until: str = "", timeout: float = 5.0) -> None:
        """Reads frames until `until` appears on the screen (or in a notice), or the socket closes."""
        deadline = asyncio.get_running_loop().time() + timeout
        while until not in self.screen + json.dumps(self.notices) or not until:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"waited for {until!r}; screen: {self.screen!r}; notices: {self.notices}")
            try:
                message = await self.communicator.receive_output(timeout=remaining)
            except TimeoutError:
                if not until:
                    return
                raise
            if message["type"] == "websocket.close":
                self.closed_with = message.get("code")
                return
            if message.get("bytes") is not None:
                self.screen += message["bytes"].decode()
            elif message.get("text") is not None:
                self.notices.append(json.loads(message["text"]))

    async def type(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)


def _communicator(instance, user, *, ticket=None):
    application = URLRouter(websocket_urlpatterns)
    ticket = console_ticket(instance=instance, user=user) if ticket is None else ticket
    communicator = WebsocketCommunicator(application, f"/ws/instances/{instance.pk}/console/?ticket={ticket}")
    communicator.scope["user"] = user
    return communicator


def test_a_member_types_a_command_and_sees_the_answer(running, member, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario():
        terminal = Terminal(_communicator(running, member))
        connected, _ = await terminal.communicator.connect()
        assert connected
        await terminal.pump(until="Connected to the serial console of web-1")
        await terminal.type("echo secret-typed-words\r")
        await terminal.pump(until="secret-typed-words\r\nroot@web-1:~# ")
        await terminal.type("hostname\r")
        await terminal.pump(until="\r\nweb-1\r\n")
        await terminal.communicator.disconnect()
        return terminal

    terminal = run_async(scenario)

    assert terminal.notices[0]["final"] is False
    assert "secret-typed-words" not in caplog.text


def test_a_second_session_takes_over_with_a_notice(running, member, owner):
    async def scenario():
        first = Terminal(_communicator(running, member))
        await first.communicator.connect()
        await first.pump(until="Connected")
        second = Terminal(_communicator(running, owner))
        await second.communicator.connect()
        await second.pump(until="Connected")
        await first.pump(until="Another session took over this console.")
        await first.pump()
        await second.type("whoami\r")
        await second.pump(until="root\r\n")
        await second.communicator.disconnect()
        return first

    first = run_async(scenario)

    assert first.notices[-1] == {"type": "notice", "message": "Another session took over this console.", "final": True}
    assert first.closed_with == consumers.CLOSE_TAKEN_OVER


def test_a_session_ends_after_the_idle_timeout(running, member, settings):
    from datetime import timedelta

    settings.CONSOLE_IDLE_TIMEOUT = timedelta(seconds=0.5)

    async def scenario():
        terminal = Terminal(_communicator(running, member))
        await terminal.communicator.connect()
        await terminal.pump(until="without typing", timeout=5)
        await terminal.pump()
        return terminal

    terminal = run_async(scenario)

    assert terminal.notices[-1]["final"] is True
    assert terminal.closed_with == consumers.CLOSE_TIMED_OUT


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("viewer", "Your role does not allow using the console."),
        ("bad-ticket", "This console link is not valid."),
        ("other-user", "This console link belongs to another session."),
        ("stopped", "web-1 is stopped; start it to use the console."),
    ],
)
def test_refusals_explain_themselves_and_close(running, member, viewer, owner, case, message):
    user, ticket = member, None
    if case == "viewer":
        user, ticket = viewer, console_ticket(instance=running, user=viewer)
    elif case == "bad-ticket":
        ticket = "forged"
    elif case == "other-user":
        ticket = console_ticket(instance=running, user=owner)
    elif case == "stopped":
        running.state = InstanceState.STOPPED
        running.save(update_fields=["state"])

    async def scenario():
        terminal = Terminal(_communicator(running, user, ticket=ticket))
        await terminal.communicator.connect()
        await terminal.pump(until=message)
        await terminal.pump()
        return terminal

    terminal = run_async(scenario)

    assert terminal.notices == [{"type": "notice", "message": message, "final": True}]
    assert terminal.closed_with == consumers.CLOSE_REFUSED


def test_the_whole_asgi_application_needs_the_session_and_an_allowed_origin(running, member, settings):
    from portal.asgi import application

    client = login_client(member)
    ticket = client.post(ticket_url(running)).json()["ticket"]
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    path = f"/ws/instances/{running.pk}/console/?ticket={ticket}"

    async def scenario():
        foreign = WebsocketCommunicator(
            application, path, headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)]
        )
        refused, _ = await foreign.connect()
        terminal = Terminal(
            WebsocketCommunicator(
                application, path, headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
            )
        )
        connected, _ = await terminal.communicator.connect()
        await terminal.pump(until="Connected")
        await terminal.type("uname\r")
        await terminal.pump(until="Linux\r\n")
        await terminal.communicator.disconnect()
        return refused, connected

    refused, connected = run_async(scenario)

    assert (refused, connected) == (False, True)


def test_only_members_who_may_act_get_a_ticket(running, member_client, viewer, outsider_client):
    response = member_client.post(ticket_url(running))
    assert response.status_code == 200
    assert response.json()["url"] == f"/ws/instances/{running.pk}/console/"

    assert login_client(viewer).post(ticket_url(running)).status_code == 403
    assert outsider_client.post(ticket_url(running)).status_code == 404
    assert member_client.get(ticket_url(running)).status_code == 405
