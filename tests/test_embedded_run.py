"""`make run`'s program on a fresh var folder: migrates, prints credentials, serves the API,
runs a task through the filesystem broker on its worker, checks the demo target's scenarios (an
incident opens for the one that is down), and stops everything on Ctrl-C."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_the_embedded_product_starts_serves_and_stops(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DEBUG", "LOG_FORMAT"}
    }
    demo_port, demo_tls_port = free_port(), free_port()
    env.update(
        {
            "HEALTHORCH_VAR_DIR": str(tmp_path),
            "PORT": str(port),
            "DEMO_TARGET_PORT": str(demo_port),
            "DEMO_TARGET_TLS_PORT": str(demo_tls_port),
        }
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "scripts/embedded.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return requests.get(f"{base}/ready", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, 240, "/ready")
        text = log.read_text()
        key = re.search(r"API key\s+: (hk_\S+)", text).group(1)
        password = re.search(r"operator\s+: \S+ / (\S+)", text).group(1)
        assert password
        org = requests.get(f"{base}/api/v1/organization", headers={"X-API-Key": key}, timeout=5)
        assert org.json()["slug"] == "demo"
        assert requests.post(f"{base}/api/dev/bootstrap", json={}, timeout=5).status_code == 201

        # A task enqueued from another process reaches the embedded worker.
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from apps.tenants.tasks import purge_dead_api_keys as t; t.delay()",
            ],
            cwd=ROOT,
            env={**env, "DEBUG": "1"},
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_for(lambda: "purged dead api keys" in log.read_text(), 60, "the worker")
        assert "beat: Starting" in log.read_text()

        # Beat dispatches the demo monitors and the worker checks them: the product is alive.
        def demo_monitor_up() -> bool:
            monitors = requests.get(
                f"{base}/api/v1/monitors/",
                headers={"X-API-Key": key},
                params={"search": "health"},
                timeout=5,
            ).json()["results"]
            return any(m["name"] == "healthorch health" and m["status"] == "up" for m in monitors)

        wait_for(demo_monitor_up, 150, "the demo monitor to be checked and up")

        # The demo target serves its scenarios, and the one scripted down opens an incident.
        assert requests.get(f"http://127.0.0.1:{demo_port}/s/down", timeout=5).status_code == 503

        def down_incident() -> bool:
            incidents = requests.get(
                f"{base}/api/v1/incidents/", headers={"X-API-Key": key}, timeout=5
            ).json()["results"]
            return any("legacy api (down)" in i["title"] for i in incidents)

        wait_for(down_incident, 90, "an incident for the demo target's down scenario")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert "healthorch: stopped" in log.read_text()
    # Nothing keeps listening after Ctrl-C.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", demo_port)) != 0
