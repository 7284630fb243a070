"""The embedded broker's transport: kombu's filesystem transport, each message written whole before it appears.

kombu's own `_put` creates the message file in the queue folder and then writes it, while a consumer's `_get` moves
and reads files without waiting for the writer's lock: a worker polling at that instant reads an empty message and
stops with "Unrecoverable error: JSONDecodeError". Here a message is written under a name no consumer looks at and
renamed into place when complete; a rename within one folder is atomic, so a consumer sees a whole message or none.

Celery's worker loop for a polled transport like this one acknowledges finished tasks only between two calls of
`drain_events`, which it makes with a 2 s timeout. While every message the worker may hold (its prefetch) is still
unacknowledged, kombu's `drain_events` would poll on until that timeout: each finished task's acknowledgement, and
so the next message, waited up to 2 s, and a backlog drained at two messages per 2 s whatever the worker's speed.
Here `drain_events` hands the loop back after one polling interval while the worker may take no more messages.

`portal.celery` makes this the transport of `filesystem://` broker URLs.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# A message being written is "<stamp>_<uuid>.<queue>.part": no consumer takes a name without ".<queue>.msg".
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Puts `payload` onto `queue`: written in full under a partial name, then renamed into the queue."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, name.removesuffix(".msg") + PARTIAL_SUFFIX)
        try:
            with open(partial, "wb") as message:
                message.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        if any(channel._consumers and not channel.qos.can_consume() for channel in self.channels):
            # Every message the worker may hold is unacknowledged: poll the other queues (control messages) once
            # and let its loop acknowledge the finished tasks.
            timeout = self.polling_interval if timeout is None else min(timeout, self.polling_interval)
        return super().drain_events(connection, timeout=timeout)
