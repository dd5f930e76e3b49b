"""The embedded broker (kombu's filesystem transport, apps/core/fsbroker.py) writes a message
whole or not at all, and a worker reading the folder skips a file it cannot decode instead of
stopping. Real kombu connections on a temporary folder; the full disk is the kernel's own
refusal, a file size limit (RLIMIT_FSIZE) set in a child process that then sends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import time_machine
from kombu import Connection

import healthorch.celery  # noqa: F401 (registers the transport for filesystem://)
from tests.support import ROOT


def _connection(folder: Path) -> Connection:
    return Connection(
        "filesystem://localhost//",
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder),
        },
    )


def test_filesystem_urls_use_the_whole_message_transport(tmp_path):
    from apps.core.fsbroker import Transport

    assert _connection(tmp_path).get_transport_cls() is Transport


def test_a_torn_message_file_is_skipped_not_fatal(tmp_path, caplog):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q")
        # What a full disk left before; its name sorts before every name the channel gives,
        # so the reader meets it first (kombu reads a queue's files in sorted-name order).
        (tmp_path / f"{0:020d}_torn.q.msg").write_bytes(b"")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
    assert "skipped an unreadable message file in the broker folder" in caplog.text
    assert not list(tmp_path.glob("*.msg"))


def test_messages_are_read_in_the_order_they_were_sent_across_a_digit_boundary(tmp_path):
    # kombu's own names (an unpadded clock) sorted "999..._" after "1000..._": a later message
    # overtook an earlier one whenever the clock's count gained a digit. Sent one second each
    # side of the moment the nanosecond clock gains its twentieth digit.
    boundary = 10**19
    with _connection(tmp_path) as conn:
        # A queue name of its own: kombu keeps declared exchanges in class-wide state, so a name
        # another test declared in its own folder would not be bound in this one.
        queue = conn.SimpleQueue("ordered")
        for n, at in enumerate((boundary - 10**9, boundary + 10**9)):
            with time_machine.travel(at / 10**9, tick=False):
                queue.put({"n": n})
        received = []
        for _ in range(2):
            message = queue.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
        queue.close()
    assert received == [0, 1]


SEND_OVER_THE_LIMIT = """
import resource, signal, sys
import time_machine
from kombu import Connection
from kombu.exceptions import ChannelError
import healthorch.celery
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
folder = sys.argv[1]
conn = Connection("filesystem://localhost//", transport_options={
    "data_folder_in": folder, "data_folder_out": folder, "control_folder": folder})
queue = conn.SimpleQueue("q")
resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
try:
    queue.put({"big": "x" * 10_000})
except ChannelError as exc:
    print("refused:", exc.__cause__.errno)
"""


def test_a_message_that_cannot_be_written_leaves_no_file(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SEND_OVER_THE_LIMIT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.startswith("refused: "), done.stdout + done.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir() if ".msg" in p.name] == []
