#!/usr/bin/env python
"""1,000 monitors of one organization go down at once: how long until every channel has been
told, and in how many messages?

Opens 1,000 critical incidents the way the incident fold does (transactions of 200 rows, each
event published to the alerts listener), with two webhook channels pointing at a local
receiver, and a real Celery worker (a subprocess on CELERY_BROKER_URL) delivering. Measures
from the first incident's commit to the receiver holding messages that list all 1,000, per
channel. Uses a kept test database (`test_<name>`).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/4 DEBUG=1 .venv/bin/python benchmarks/alerts_grouping.py

Without DATABASE_URL and CELERY_BROKER_URL it runs on the embedded default (SQLite, the
filesystem broker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

MONITORS = int(os.environ.get("BENCH_MONITORS", "1000"))
BATCH = int(os.environ.get("BENCH_BATCH", "200"))
SECRET = "bench-secret-0123456789abcdef"  # noqa: S105 - a local receiver's key


class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str, dict]] = []


def serve(received: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with received.lock:
                received.messages.append((time.monotonic(), self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def listed(body: dict) -> int:
    extra = body.get("extra", {})
    return len(extra["incidents"]) if extra.get("grouped") else 1


def main() -> None:
    setup_test_environment()
    if connection.vendor == "sqlite":
        # A file, not SQLite's in-memory test database: the worker process must see it.
        connection.settings_dict["TEST"]["NAME"] = str(ROOT / "var" / "bench-alerts.sqlite3")
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    test_db = connection.settings_dict["NAME"]
    from apps.alerts.models import Channel
    from apps.alerts.services.channels import channel_create
    from apps.incidents import events
    from apps.incidents.models import EventKind, Incident, IncidentEvent
    from apps.plans.services import organization_change_plan, plans_ensure_defaults
    from apps.tenants.models import Organization

    plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug="bench-alerts", defaults={"name": "Bench"})
    organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
    Incident.objects.filter(organization=org).delete()
    Channel.objects.filter(organization=org).delete()
    received = Received()
    server = serve(received)
    port = server.server_address[1]
    for path in ("/a", "/b"):
        channel_create(
            org=org,
            kind="webhook",
            name=path,
            config={"url": f"http://127.0.0.1:{port}{path}", "secret": SECRET},
        )
    env = dict(os.environ)
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{test_db}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{test_db}"
    env["HEALTHORCH_ALLOW_PRIVATE_TARGETS"] = "1"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "healthorch",
            "worker",
            "-P",
            "threads",
            "-c",
            "4",
            "-Q",
            "default",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        time.sleep(6)  # worker start-up (imports, broker connection)
        connection.close()
        # Time spent inside the alerts listener, apart from the incident rows themselves.
        in_listener = [0.0]
        wrapped = list(events._LISTENERS)

        def timed_listener(**kwargs):
            t = time.perf_counter()
            for listener in wrapped:
                listener(**kwargs)
            in_listener[0] += time.perf_counter() - t

        events._LISTENERS[:] = [timed_listener]
        started = time.monotonic()
        for start in range(0, MONITORS, BATCH):
            with transaction.atomic():
                now = timezone.now()
                for i in range(start, min(MONITORS, start + BATCH)):
                    incident = Incident.objects.create(
                        organization=org,
                        rule="service_down",
                        title=f"svc-{i:04d} is down",
                        severity="critical",
                        opened_at=now,
                        last_seen_at=now,
                    )
                    event = IncidentEvent.objects.create(
                        incident=incident,
                        organization=org,
                        kind=EventKind.OPENED,
                        at=now,
                        data={"notify": True},
                    )
                    events.publish(incident=incident, event=event)
        written = time.monotonic() - started
        deadline = time.monotonic() + 60
        done_at: dict[str, float] = {}
        while time.monotonic() < deadline and len(done_at) < 2:
            with received.lock:
                messages = list(received.messages)
            for path in ("/a", "/b"):
                got = [m for m in messages if m[1] == path]
                if path not in done_at and sum(listed(b) for _, _, b in got) >= MONITORS:
                    done_at[path] = max(t for t, _, _ in got) - started
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(20)
        server.shutdown()
    print(f"database: {connection.vendor}, broker: {env.get('CELERY_BROKER_URL', 'filesystem://')}")
    print(
        f"{MONITORS} incidents written (and their notices) in {written:.2f} s, "
        f"{in_listener[0]:.2f} s of it in the alerts listener"
    )
    for path in ("/a", "/b"):
        got = [m for m in received.messages if m[1] == path]
        first = min(t for t, _, _ in got) - started if got else float("nan")
        print(
            f"channel {path}: {len(got)} messages, first after {first:.2f} s, "
            f"all {MONITORS} listed after {done_at.get(path, float('nan')):.2f} s"
        )


if __name__ == "__main__":
    main()
