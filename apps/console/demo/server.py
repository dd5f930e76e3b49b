"""The demo target's HTTP(S) servers.

Routes (plain and TLS ports alike):
  GET  /s/<scenario>        the scenario's answer (status, delay and body as scripted)
  GET  /healthz             200, always (for the product's own readiness checks)
  GET  /control             every scenario's mode, hits and failures (JSON)
  POST /control/<scenario>  {"mode": "healthy|flaky|slow|down|recovering|auto"}
  POST /control/reset       forget modes and counters, restart the scripted clock
  POST /restart/<scenario>  the restart hook (healing): a recovering scenario comes back up
  POST /hooks/alerts        the alert webhook receiver
  GET  /deliveries          what the two hooks received (HTML; /deliveries.json as JSON)
Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from apps.console.demo import certs
from apps.console.demo.receiver import Receiver
from apps.console.demo.scenarios import Scenarios, Script

HOST = "127.0.0.1"


def _handler(scenarios: Scenarios, receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "healthorch-demo-target"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the product records every check; the target stays quiet

        def _send(self, status: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _json(self, status: int, payload: object) -> None:
            self._send(status, json.dumps(payload), "application/json")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if path == "/healthz":
                self._send(200, "ok\n")
            elif path == "/control":
                self._json(200, scenarios.describe())
            elif path == "/deliveries":
                self._send(200, receiver.page(), "text/html")
            elif path == "/deliveries.json":
                self._json(200, receiver.items())
            elif path.startswith("/s/") and path[3:]:
                answer = scenarios.answer(path[3:])
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                self._send(answer.status, answer.body)
            else:
                self._send(404, "unknown path; try /s/healthy or /control\n")

        def do_POST(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if path == "/hooks/alerts" or (path.startswith("/restart/") and path[9:]):
                self._hook(path, raw)
                return
            if path == "/control/reset":
                scenarios.reset()
                self._json(200, scenarios.describe())
                return
            if not path.startswith("/control/") or not path[9:]:
                self._send(404, "POST /control/<scenario> or /control/reset\n")
                return
            try:
                mode = json.loads(raw or b"{}").get("mode", "")
                scenarios.set_mode(path[9:], mode)
            except (ValueError, AttributeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {path[9:]: scenarios.describe()[path[9:]]})

        def _hook(self, path: str, raw: bytes) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            signature = receiver.check(headers, raw)
            hook = "alert" if path == "/hooks/alerts" else "restart"
            if signature == "refused":
                receiver.record(hook=hook, body=raw, signature=signature, status=401)
                self._json(401, {"error": "bad signature"})
                return
            receiver.record(hook=hook, body=raw, signature=signature, status=200)
            if hook == "restart":
                self._json(200, {path[9:]: scenarios.restart(path[9:])})
            else:
                self._json(200, {"received": True})

    return Handler


@dataclass
class DemoTarget:
    """Both servers in background threads: `start()`, read `.port`/`.tls_port`, `stop()`."""

    script: Script = field(default_factory=Script)
    port: int = 0
    tls_port: int | None = 0  # None: no TLS port
    cert_folder: Path | None = None
    cert_days: float = 5.0
    # Checks the signature of alert and restart hooks; "" accepts them unchecked.
    hook_secret: str = ""
    scenarios: Scenarios = field(init=False)
    receiver: Receiver = field(init=False)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.scenarios = Scenarios(script=self.script)
        self.receiver = Receiver(secret=self.hook_secret)

    def start(self) -> DemoTarget:
        handler = _handler(self.scenarios, self.receiver)
        plain = ThreadingHTTPServer((HOST, self.port), handler)
        plain.daemon_threads = True
        self.port = plain.server_address[1]
        self._servers.append(plain)
        if self.tls_port is not None:
            if self.cert_folder is None:
                raise ValueError("a TLS port needs cert_folder")
            cert, key = certs.issue_leaf(self.cert_folder, days=self.cert_days)
            tls = ThreadingHTTPServer((HOST, self.tls_port), handler)
            tls.daemon_threads = True
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            # A failed handshake (a checker probing) must not stall the accept loop.
            tls.socket = context.wrap_socket(
                tls.socket, server_side=True, do_handshake_on_connect=False
            )
            self.tls_port = tls.server_address[1]
            self._servers.append(tls)
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="demo-target", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
