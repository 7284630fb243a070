"""The interactive console's WebSocket: a terminal in the instance page wired to the machine's serial console.

Frames: the browser sends what is typed (text or binary); the server sends what the guest writes (binary) and
notices (text, JSON: {"type": "notice", "message": …, "final": bool}). A final notice is followed by a close:
4001 another session took over, 4003 refused (ticket, role, machine not running), 4008 timed out, 4010 the
console closed, 4011 the hypervisor failed. What is typed is passed on and never logged.

A thread per session pumps the guest's output (driver consoles are blocking), and watches the lease and the time
limits; the consumer's event loop only forwards frames.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from compute.console.sessions import (
    ConsoleRefused,
    console_grant,
    console_lease_held,
    console_lease_release,
    console_lease_take,
)
from compute.drivers import driver_for
from compute.drivers.base import DriverError

READ_WAIT = 0.25  # seconds the pump waits for output before looking at the lease and the clock again
LEASE_CHECK_EVERY = 1.0
MAX_INPUT_BYTES = 64 * 1024  # one frame: a generous paste

CLOSE_TAKEN_OVER = 4001
CLOSE_REFUSED = 4003
CLOSE_TIMED_OUT = 4008
CLOSE_CONSOLE_ENDED = 4010
CLOSE_DRIVER_FAILED = 4011


def _open_console(grant):
    return driver_for(grant.host).console_open(grant.instance_id)


class ConsoleConsumer(AsyncWebsocketConsumer):
    session = None
    token = ""
    ended = False

    async def connect(self):
        self.instance_id = str(self.scope["url_route"]["kwargs"]["pk"])
        self.group = f"console.{self.instance_id}"
        self.stopping = threading.Event()
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            grant = await database_sync_to_async(console_grant)(
                ticket=query.get("ticket", [""])[0], instance_id=self.instance_id, user=self.scope.get("user")
            )
            self.session = await database_sync_to_async(_open_console)(grant)
        except ConsoleRefused as refusal:
            await self.end(str(refusal), code=CLOSE_REFUSED)
            return
        except DriverError as error:
            await self.end(f"The console cannot be opened: {error}", code=CLOSE_DRIVER_FAILED)
            return
        self.token = await asyncio.to_thread(console_lease_take, instance_id=self.instance_id)
        self.started_ns = time.time_ns()
        self.last_input = self.opened = time.monotonic()
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Whoever had this machine's console open (in this process or, through Redis, in another) lets go.
        await self.channel_layer.group_send(
            self.group, {"type": "console.takeover", "token": self.token, "started": self.started_ns}
        )
        await self.notice(f"Connected to the serial console of {grant.instance_name}.", final=False)
        self.loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, name=f"console-{self.instance_id}", daemon=True).start()

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None or self.ended:
            return
        data = bytes_data if bytes_data is not None else (text_data or "").encode()
        if not data:
            return
        self.last_input = time.monotonic()
        await asyncio.to_thread(self.session.write, data[:MAX_INPUT_BYTES])

    async def disconnect(self, code):
        self.ended = True
        self.stopping.set()
        if self.session is not None:
            await asyncio.to_thread(self.session.close)
            await asyncio.to_thread(console_lease_release, instance_id=self.instance_id, token=self.token)
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def console_takeover(self, event):
        """Another session opened this machine's console; the newest one keeps it."""
        if event["token"] != self.token and event["started"] >= self.started_ns:
            await self.end("Another session took over this console.", code=CLOSE_TAKEN_OVER)

    async def notice(self, message: str, *, final: bool) -> None:
        await self.send(text_data=json.dumps({"type": "notice", "message": message, "final": final}))

    async def end(self, message: str, *, code: int) -> None:
        if self.ended:
            return
        self.ended = True
        self.stopping.set()
        await self.notice(message, final=True)
        await self.close(code=code)

    async def output(self, data: bytes) -> None:
        if not self.ended:
            await self.send(bytes_data=data)

    # --- the pump: a thread per session ------------------------------------------------------------------------
    def _pump(self) -> None:
        idle_limit = settings.CONSOLE_IDLE_TIMEOUT.total_seconds()
        max_duration = settings.CONSOLE_MAX_DURATION.total_seconds()
        next_lease_check = time.monotonic() + LEASE_CHECK_EVERY
        ending = None
        while not self.stopping.is_set():
            data = self.session.read(READ_WAIT)
            if data is None:
                ending = ("The console closed.", CLOSE_CONSOLE_ENDED)
                break
            if data:
                self._call(self.output(data))
            now = time.monotonic()
            if now >= next_lease_check:
                next_lease_check = now + LEASE_CHECK_EVERY
                if not console_lease_held(instance_id=self.instance_id, token=self.token):
                    ending = ("Another session took over this console.", CLOSE_TAKEN_OVER)
                    break
            if now - self.last_input > idle_limit:
                ending = ("The console closed after a while without typing.", CLOSE_TIMED_OUT)
                break
            if now - self.opened > max_duration:
                ending = ("The console closed: sessions last at most a few hours.", CLOSE_TIMED_OUT)
                break
        if ending is not None and not self.stopping.is_set():
            if ending[1] == CLOSE_CONSOLE_ENDED and not console_lease_held(
                instance_id=self.instance_id, token=self.token
            ):
                ending = ("Another session took over this console.", CLOSE_TAKEN_OVER)
            self._call(self.end(ending[0], code=ending[1]))

    def _call(self, coroutine) -> None:
        try:
            asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the event loop is gone (the server stopped)
            coroutine.close()
