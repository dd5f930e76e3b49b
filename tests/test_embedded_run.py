"""`make run`'s program on a fresh var folder: migrates, prints credentials, serves the API,
runs a task through the filesystem broker on its worker, checks the demo target's scenarios (an
incident opens for the one that is down, its webhook reaches the target's receiver, and the
healing policy restarts the recovering one), passes the end-to-end script (scripts/saas_e2e.sh),
and stops everything on Ctrl-C. One product start serves every test here (it costs a minute of
migrations)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e_stripe import product_env, stripe_standin
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Embedded:
    base: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen
    key: str
    demo_port: int
    stripe_complete_url: str
    started: float  # time.monotonic() when make run's program was started


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DEBUG", "LOG_FORMAT"}
    }


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:
    var = tmp_path_factory.mktemp("embedded")
    port, demo_port, demo_tls_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with stripe_standin(base) as (fake, complete_url):
        env = _clean_env()
        env.update(
            {
                "HEALTHORCH_VAR_DIR": str(var),
                "PORT": str(port),
                "DEMO_TARGET_PORT": str(demo_port),
                "DEMO_TARGET_TLS_PORT": str(demo_tls_port),
                # Billing against the Stripe stand-in (tests/e2e_stripe.py), so the script can
                # upgrade through Checkout; nothing else in the product depends on it.
                **product_env(fake),
            }
        )
        log = var / "run.log"
        started = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "scripts/embedded.py"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:

            def ready() -> bool:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    return requests.get(f"{base}/ready", timeout=5).status_code == 200
                except requests.RequestException:
                    return False

            # A fresh SQLite file is migrated first (dj-stripe's ~500 operations): ~1 min on a
            # quiet machine, past 4 min on a loaded 2-core one. A liveness bound, not a timing.
            wait_for(ready, 600, "/ready")
            key = re.search(r"API key\s+: (hk_\S+)", log.read_text()).group(1)
            yield Embedded(base, env, log, proc, key, demo_port, complete_url, started)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert "healthorch: stopped" in log.read_text()
    # Nothing keeps listening after Ctrl-C.
    for p in (port, demo_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", p)) != 0


def test_the_embedded_product_starts_serves_and_runs_its_demo(embedded):
    base, key, log = embedded.base, embedded.key, embedded.log
    text = log.read_text()
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
        env={**embedded.env, "DEBUG": "1"},
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
    demo = f"http://127.0.0.1:{embedded.demo_port}"
    assert requests.get(f"{demo}/s/down", timeout=5).status_code == 503

    def down_incident() -> bool:
        incidents = requests.get(
            f"{base}/api/v1/incidents/", headers={"X-API-Key": key}, timeout=5
        ).json()["results"]
        return any("legacy api (down)" in i["title"] for i in incidents)

    wait_for(down_incident, 90, "an incident for the demo target's down scenario")

    # The whole loop: the incident's webhook reaches the target's receiver (signed with the
    # demo's secret), and the healing policy calls the target's restart hook for payments,
    # which the product records as an attempt. The scripted schedule has both within about
    # two minutes of the start; the waits below only keep a broken demo from hanging the run.
    def delivered(hook: str) -> list[dict]:
        received = requests.get(f"{demo}/deliveries.json", timeout=5).json()
        return [d for d in received if d["hook"] == hook and d["signature"] == "verified"]

    wait_for(lambda: delivered("alert"), 120, "an alert webhook delivered to the demo target")
    alert_after = time.monotonic() - embedded.started
    wait_for(lambda: delivered("restart"), 240, "the healing policy's restart hook")
    healed_after = time.monotonic() - embedded.started
    attempts = requests.get(
        f"{base}/api/v1/healing-attempts/", headers={"X-API-Key": key}, timeout=5
    ).json()["results"]
    assert any(a["status"] == "succeeded" and a["action_kind"] == "webhook" for a in attempts), (
        attempts
    )
    assert requests.get(f"{demo}/control", timeout=5).json()["recovering"]["restarts"] >= 1
    print(
        f"demo: first alert delivered {alert_after:.0f} s, healing {healed_after:.0f} s after start"
    )


def test_the_end_to_end_script_passes_against_the_embedded_product(embedded):
    # The pro plan's Stripe price, as an operator's `sync_plans` makes it (on the stand-in).
    subprocess.run(
        [sys.executable, "manage.py", "sync_plans"],
        cwd=ROOT,
        env={**embedded.env, "DEBUG": "1"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = subprocess.run(
        ["bash", "scripts/saas_e2e.sh"],
        cwd=ROOT,
        env={
            **embedded.env,
            "E2E_BASE_URL": embedded.base,
            "E2E_STRIPE_COMPLETE_URL": embedded.stripe_complete_url,
            "E2E_REQUIRE_CHECKOUT": "1",
            "PYTHON": sys.executable,
        },
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checkout completed: plan pro" in result.stdout
    assert "E2E OK" in result.stdout


def test_the_end_to_end_script_stops_at_the_first_deviation_and_names_it():
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(
        ["bash", "scripts/saas_e2e.sh"],
        cwd=ROOT,
        env={**_clean_env(), "E2E_BASE_URL": nowhere, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "E2E FAILED at step 'the product answers'" in result.stderr
    assert "--- bootstrap an organization" not in result.stdout
