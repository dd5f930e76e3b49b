"""gunicorn's access log never holds a ping token, a subscriber link or a page access token.

The table checks the redaction itself; the last test runs a real gunicorn with the logger class
the entrypoint and the systemd unit name, sends it requests with secrets in them, and reads what
it wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from healthorch.accesslog import REDACTED, redact
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0b9e1c55-4f4c-4d1e-9a3c-2f1d8e7a6b5c"

CASES = {
    "a ping": (f"GET /ping/{TOKEN} HTTP/1.1", f"GET /ping/{REDACTED} HTTP/1.1"),
    "a failure ping": (f"/ping/{TOKEN}/fail", f"/ping/{REDACTED}/fail"),
    "an exit code ping": (f"/ping/{TOKEN}/3?x=1", f"/ping/{REDACTED}/3?x=1"),
    "a confirm link": ("/status/shop/confirm/abc.def-ghi", f"/status/shop/confirm/{REDACTED}"),
    "an unsubscribe link": (
        "/status/shop/unsubscribe/t0k:3n",
        f"/status/shop/unsubscribe/{REDACTED}",
    ),
    "a private page token": (
        "/status/shop/?token=s3cret&x=1",
        f"/status/shop/?token={REDACTED}&x=1",
    ),
    "a key in the query": ("/x?a=1&KEY=hk_live", f"/x?a=1&KEY={REDACTED}"),
}
KEPT = {
    "a status badge (public by design)": "/badge/abc123/status.svg",
    "an API path with an id": "/api/v1/monitors/0b9e1c55-4f4c-4d1e-9a3c-2f1d8e7a6b5c/",
    "a plain query": "/api/v1/monitors/?search=ping",
}


@pytest.mark.parametrize(("line", "logged"), CASES.values(), ids=CASES.keys())
def test_secrets_in_urls_are_redacted(line, logged):
    assert redact(line) == logged
    assert "s3cret" not in redact(line)


@pytest.mark.parametrize("line", KEPT.values(), ids=KEPT.keys())
def test_urls_without_secrets_are_left_alone(line):
    assert redact(line) == line


def test_a_real_gunicorn_logs_requests_without_their_secrets(tmp_path):
    (tmp_path / "tinyapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n"
    )
    port = free_port()
    log = tmp_path / "access.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tinyapp:app",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
            "--no-control-socket",
            f"--access-logfile={log}",
            "--logger-class=healthorch.accesslog.RedactingLogger",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answers() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
            except OSError:
                return False

        wait_for(answers, 30, "gunicorn to listen")
        for path in (f"/ping/{TOKEN}", "/status/shop/?token=s3cret", "/status/shop/confirm/abc"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
        wait_for(lambda: log.read_text().count("\n") >= 4, 10, "the access log lines")
    finally:
        server.terminate()
        server.wait(timeout=10)
    written = log.read_text()
    assert TOKEN not in written
    assert "s3cret" not in written
    assert "/confirm/abc" not in written
    assert written.count(REDACTED) == 3
