"""The web role's gunicorn master (docker/gunicorn.conf.py) serves its workers' summed request
metrics on METRICS_PORT, as workers and beat do."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.observability.scrape import scrape, total
from tests.support import free_port, serve_gunicorn

ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_serves_every_workers_requests_on_the_metrics_port(tmp_path):
    metrics_port = free_port()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = {
        # /live touches nothing: an empty SQLite file and the filesystem broker will do.
        "HEALTHORCH_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "METRICS_PORT": str(metrics_port),
        "METRICS_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    def metrics_up() -> bool:
        try:
            return requests.get(metrics_url, timeout=5).ok
        except requests.RequestException:
            return False

    config = ("--config", str(ROOT / "docker" / "gunicorn.conf.py"))
    with serve_gunicorn(env, workers=2, args=config, also_up=metrics_up) as (_, port):
        for _ in range(30):
            assert requests.get(f"http://127.0.0.1:{port}/live", timeout=10).ok
        text = scrape(metrics_url)

    labels = {"method": "GET", "route": "/live", "status": "200"}
    # 30 plus the readiness polls, counted in the workers and served by the master, which
    # runs no request itself.
    assert total(text, "http_requests_total", **labels) >= 31
    assert total(text, "http_request_duration_seconds_count", **labels) >= 31
