"""The web role's gunicorn master (docker/gunicorn.conf.py) serves its workers' summed request
metrics on METRICS_PORT, as workers and beat do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.observability.scrape import scrape, total
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_serves_every_workers_requests_on_the_metrics_port(tmp_path):
    port, metrics_port = free_port(), free_port()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = {
        **os.environ,
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        # /live touches nothing: an empty SQLite file and the filesystem broker will do.
        "HEALTHORCH_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "METRICS_PORT": str(metrics_port),
        "METRICS_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "healthorch.wsgi:application",
            "--config",
            str(ROOT / "docker" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode(errors="replace"))
            try:
                return (
                    requests.get(f"http://127.0.0.1:{port}/live", timeout=5).ok
                    and requests.get(metrics_url, timeout=5).ok
                )
            except requests.RequestException:
                return False

        wait_for(up, 90, "gunicorn and its metrics port")
        for _ in range(30):
            assert requests.get(f"http://127.0.0.1:{port}/live", timeout=10).ok
        text = scrape(metrics_url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    labels = {"method": "GET", "route": "/live", "status": "200"}
    # 30 plus the readiness polls, counted in the workers and served by the master, which
    # runs no request itself.
    assert total(text, "http_requests_total", **labels) >= 31
    assert total(text, "http_request_duration_seconds_count", **labels) >= 31
