"""Small helpers for tests that start real processes and servers on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it is true; bounded, so a broken start fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Mailbox:
    """What a real SMTP server received; it refuses recipients at nobody@ (a bounce)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


@contextmanager
def serve_smtp(settings) -> Iterator[Mailbox]:
    """An SMTP server (aiosmtpd) on a free port, with Django's mail settings pointed at it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield mailbox
    finally:
        controller.stop()


@contextmanager
def serve_gunicorn(
    env: dict[str, str],
    *,
    workers: int = 1,
    args: tuple[str, ...] = (),
    also_up: Callable[[], bool] | None = None,
    timeout: float = 90,
) -> Iterator[tuple[subprocess.Popen, int]]:
    """The product under a real gunicorn on a free port, with `env` over this process's
    environment (DEBUG on, quiet logs); yields (process, port) once `/live` answers (and
    `also_up`, if given), and stops it afterwards, killed if it will not stop."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "healthorch.wsgi:application",
            *args,
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode(errors="replace"))
        try:
            # A worker still importing Django on a busy machine may accept and answer late.
            live = requests.get(f"http://127.0.0.1:{port}/live", timeout=5).ok
        except requests.RequestException:
            return False
        return live and (also_up is None or also_up())

    try:
        wait_for(up, timeout, "gunicorn")
        yield proc, port
    finally:  # never leave a server behind, whatever went wrong
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
