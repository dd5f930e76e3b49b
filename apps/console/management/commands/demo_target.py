"""`manage.py demo_target`: the local scripted target (see apps/console/demo)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.console.demo import samples
from apps.console.demo.samples import MetricPusher
from apps.console.demo.scenarios import Script
from apps.console.demo.server import DemoTarget


class Command(BaseCommand):
    help = (
        "Serve scripted scenarios on 127.0.0.1 (/s/healthy, flaky, slow, down, recovering; "
        "a TLS port with a certificate expiring soon) and push demo metrics."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--tls-port", type=int, default=8443, help="0: any free port")
        parser.add_argument("--no-tls", action="store_true")
        parser.add_argument("--cert-days", type=float, default=5.0)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--slow-ms", type=int, default=1200)
        parser.add_argument("--recovering-period", type=float, default=300.0)
        parser.add_argument("--recovering-down", type=float, default=120.0)
        parser.add_argument("--push-metrics", metavar="BASE_URL", default="")
        parser.add_argument("--api-key", default="", help="or --api-key-file")
        parser.add_argument(
            "--api-key-file",
            default="",
            help="a JSON file with an `api_key` and a `webhook_secret` (var/demo-credentials.json)",
        )
        parser.add_argument(
            "--hook-secret",
            default="",
            help="checks the signature of alert and restart hooks (else the file's webhook_secret)",
        )
        parser.add_argument("--metrics-interval", type=float, default=samples.INTERVAL_S)
        parser.add_argument("--source", default="demo-target")
        parser.add_argument(
            "--ready-file", default="", help="write {port, tls_port} here once serving"
        )

    def handle(self, *args, **o) -> None:
        saved = {}
        if o["api_key_file"] and Path(o["api_key_file"]).exists():
            saved = json.loads(Path(o["api_key_file"]).read_text())
        script = Script(
            seed=o["seed"],
            slow_ms=o["slow_ms"],
            recovering_period_s=o["recovering_period"],
            recovering_down_s=o["recovering_down"],
        )
        target = DemoTarget(
            script=script,
            port=o["port"],
            tls_port=None if o["no_tls"] else o["tls_port"],
            cert_folder=Path(settings.VAR_DIR) / "demo-target",
            cert_days=o["cert_days"],
            hook_secret=o["hook_secret"] or saved.get("webhook_secret", ""),
        ).start()
        pusher = None
        if o["push_metrics"]:
            key = o["api_key"] or saved.get("api_key", "")
            if not key:
                raise CommandError("--push-metrics needs --api-key or --api-key-file")
            pusher = MetricPusher(
                base_url=o["push_metrics"],
                api_key=key,
                seed=o["seed"],
                interval=o["metrics_interval"],
                source=o["source"],
            )
            pusher.start()
        info = {"port": target.port, "tls_port": target.tls_port}
        if o["ready_file"]:
            Path(o["ready_file"]).write_text(json.dumps(info))
        self.stdout.write(
            f"demo target on {target.url}/s/<scenario> (TLS port {target.tls_port}); "
            f'control: POST {target.url}/control/<scenario> {{"mode": ...}}; '
            f"what it received: {target.url}/deliveries",
        )
        self.stdout.flush()
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
        if pusher is not None:
            pusher.stop()
        target.stop()
