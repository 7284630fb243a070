"""A domain's serial console, interactive, through libvirt (virDomainOpenConsole on a non-blocking stream).

libvirt delivers stream events through an event loop the process registers (virEventRegisterDefaultImpl) and runs;
one daemon thread per process runs it. Each console session opens its own connection, registered with that loop
after it exists, so the driver's shared connections (used synchronously by tasks and pages) are left as they are.
Opening a console takes it over (VIR_DOMAIN_CONSOLE_FORCE): the session that had it sees its stream end.
"""

# write-ok-file: libvirt stream calls, not model writes

from __future__ import annotations

import contextlib
import os
import threading
import time

import libvirt

from compute.drivers.base import DomainNotFound, PermanentDriverError, QueuedConsole, TransientDriverError

_loop_lock = threading.Lock()
_loop_pid: int | None = None
_registered = False
STREAM_EVENTS = libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
WRITE_TIMEOUT = 5.0


def _run_event_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def ensure_event_loop() -> None:
    """Registers libvirt's default event loop once per process and runs it in a daemon thread (again after a fork)."""
    global _loop_pid, _registered
    with _loop_lock:
        if _loop_pid == os.getpid():
            return
        if not _registered:
            libvirt.virEventRegisterDefaultImpl()
            _registered = True
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _loop_pid = os.getpid()


class LibvirtConsole(QueuedConsole):
    def __init__(self, *, uri: str, uuid: str):
        super().__init__()
        ensure_event_loop()
        try:
            self._conn = libvirt.open(uri)
        except libvirt.libvirtError as error:
            raise TransientDriverError(f"cannot connect to {uri}: {error.get_error_message() or error}") from error
        try:
            try:
                domain = self._conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    raise DomainNotFound(f"host {uri} has no domain {uuid}") from error
                raise
            if not domain.isActive():
                raise PermanentDriverError(f"domain {uuid} is not running")
            self._stream = self._conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            domain.openConsole(None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            self._stream.eventAddCallback(STREAM_EVENTS, self._on_event, None)
        except libvirt.libvirtError as error:
            self._conn.close()
            raise PermanentDriverError(f"console: {error.get_error_message() or error}") from error
        except PermanentDriverError:
            self._conn.close()
            raise

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque) -> None:
        """Runs on the event loop's thread."""
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            try:
                data = stream.recv(4096)
            except libvirt.libvirtError:
                data = b""
            if data == -2:  # nothing after all (would block)
                return
            if data:
                self._received(data)
                return
            self._finish()
        elif events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish()

    def _finish(self) -> None:
        if not self._closed.is_set():
            with contextlib.suppress(libvirt.libvirtError):
                self._stream.eventRemoveCallback()
        super()._finish()

    def write(self, data: bytes) -> None:
        deadline = time.monotonic() + WRITE_TIMEOUT
        while data and not self._closed.is_set():
            try:
                sent = self._stream.send(data)
            except libvirt.libvirtError:
                self._finish()
                return
            if sent == -2:  # the guest is not reading fast enough
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)
                continue
            data = data[sent:]

    def close(self) -> None:
        self._finish()
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()
