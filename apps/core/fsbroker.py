"""The embedded default's broker: kombu's filesystem transport, made safe on a full disk.

kombu writes a message straight into its final file. On a full disk the file is created and
the write fails, leaving an empty message in the queue folder; the next worker to read it
failed to decode it, and kombu treats that as an unrecoverable error: the worker stopped. Here
a message is written under a name no reader looks at (`....msg.part`) and renamed into place
once whole, so a reader sees a whole message or none, and a failed write leaves nothing. A
message file that still cannot be decoded (left by an older version, or torn by a crash of the
machine) is logged in one line and skipped instead of stopping the worker.

kombu reads a queue's files in the order of their sorted names. Its own names start with the
monotonic clock in milliseconds, unpadded, so "999999_..." sorted after "1000000_..." and a
later message overtook an earlier one whenever the count gained a digit. Names here start with
the wall clock in nanoseconds, zero-padded to a fixed width: sorted names are sending order,
and a message left over from before a restart of the machine still comes first.

`healthorch.celery` makes `filesystem://` URLs use this transport.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # kombu's reader matches `<queue>.msg` exactly
        try:
            # Buffered: a short write (the disk filling up mid-message) is retried until it
            # raises, never taken for the whole message as an unbuffered write's count is.
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.rename(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory: {exc}") from exc

    def _get(self, queue: str) -> dict:
        while True:
            try:
                return super()._get(queue)
            except ValueError as exc:  # JSON that does not decode: the file is already gone
                logger.warning(
                    "skipped an unreadable message file in the broker folder",
                    extra={"queue": queue, "error": str(exc)[:200]},
                )


class Transport(filesystem.Transport):
    Channel = Channel
