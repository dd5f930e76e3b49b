import json
import logging
from pathlib import Path

import pytest
import requests

import healthorch
from healthorch.logging import ContextFilter, JsonFormatter, request_id_var
from tests.support import free_port, serve_gunicorn

ROOT = Path(__file__).resolve().parents[2]


def test_live_answers_without_touching_anything(client):
    response = client.get("/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_reports_the_version_and_the_scheduler(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": healthorch.__version__,
        "scheduler": {"status": "ok", "backlog_seconds": 0.0, "stale_after_seconds": 30},
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("waiting", "health", "scheduler"), [(5, 200, "ok"), (45, 503, "stale")])
def test_health_fails_when_due_checks_wait_undispatched_while_ready_stays_up(
    client, org, waiting, health, scheduler
):
    """Beat (or the dispatching worker) stopped: /health, which outside monitors watch, says
    so; /ready, which load balancers watch, stays 200: the web pods are fine."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitors import services
    from apps.monitors.models import MonitorSchedule

    monitor = services.monitor_create(
        org=org,
        data={
            "name": "db",
            "kind": "tcp",
            "interval_seconds": 3600,
            "config": {"host": "127.0.0.1", "port": 9},
        },
    )
    MonitorSchedule.objects.filter(monitor=monitor).update(
        next_check_at=timezone.now() - timedelta(seconds=waiting)
    )
    response = client.get("/health")
    assert response.status_code == health
    body = response.json()
    assert body["scheduler"]["status"] == scheduler
    assert body["scheduler"]["backlog_seconds"] == pytest.approx(waiting, abs=2)
    assert body["status"] == ("ok" if health == 200 else "degraded")
    assert client.get("/ready").status_code == 200


@pytest.mark.django_db
def test_ready_checks_database_and_broker(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert checks["database"]["status"] == checks["broker"]["status"] == "ok"


@pytest.mark.django_db
def test_metrics_exposes_request_counters(client):
    client.get("/live")
    body = client.get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in body


def test_a_request_id_is_echoed_or_made(client):
    assert client.get("/live", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/live")["X-Request-ID"]
    assert len(made) == 32
    # An id that could forge log lines is replaced, not echoed.
    assert client.get("/live", HTTP_X_REQUEST_ID="x\ny")["X-Request-ID"] != "x\ny"


def test_log_lines_are_json_with_the_request_id():
    record = logging.LogRecord(
        "healthorch.test", logging.INFO, __file__, 1, "hello %s", ("you",), None
    )
    record.check = "database"
    token = request_id_var.set("req-42")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "hello you"
    assert line["request_id"] == "req-42"
    assert line["check"] == "database"
    assert line["level"] == "INFO"


@pytest.mark.parametrize(
    ("dead", "env"),
    [
        ("database", {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nope"}),
        ("broker", {"CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}),
    ],
)
def test_ready_says_which_dependency_is_down(dead, env, tmp_path):
    """A real server process with one dependency pointed at a closed port and the other on
    the embedded default (a SQLite file, the filesystem broker) so it is certainly up."""
    healthy = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ready.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
    }
    with serve_gunicorn({"HEALTHORCH_VAR_DIR": str(tmp_path), **healthy, **env}, timeout=60) as (
        _,
        port,
    ):
        response = requests.get(f"http://127.0.0.1:{port}/ready", timeout=15)
        live = requests.get(f"http://127.0.0.1:{port}/live", timeout=5)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks[dead]["status"] == "error"
    assert checks[dead]["error"]
    alive = {"database", "broker"} - {dead}
    assert all(checks[name]["status"] == "ok" for name in alive), checks
    assert live.status_code == 200
