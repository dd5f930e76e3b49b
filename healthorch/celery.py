"""The Celery app. Periodic schedules live in healthorch.schedules (one place)."""

from __future__ import annotations

import os
import uuid

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")

app = Celery("healthorch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedules(sender: Celery, **kwargs: object) -> None:
    from healthorch.schedules import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE


@signals.setup_logging.connect
def _use_django_logging(**kwargs: object) -> None:
    """Keep Celery from replacing the handlers; Django's LOGGING (JSON lines) applies."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _carry_request_id(headers: dict | None = None, **kwargs: object) -> None:
    from healthorch.logging import request_id_var

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id_var.get()


@signals.task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: object = None, **kwargs: object) -> None:
    from healthorch.logging import request_id_var, task_id_var

    request = getattr(task, "request", None)
    inherited = getattr(request, "request_id", None) if request is not None else None
    request_id_var.set(inherited if inherited and inherited != "-" else uuid.uuid4().hex)
    task_id_var.set(task_id or "-")


@signals.task_postrun.connect
def _unbind_task_context(**kwargs: object) -> None:
    from healthorch.logging import request_id_var, task_id_var

    request_id_var.set("-")
    task_id_var.set("-")


# --- metrics: workers and beat serve their own /metrics on METRICS_PORT ----------------------
# (docs/decisions/0014-every-process-serves-its-metrics.md). Started in the main process before
# the pool forks; the pool's children write into PROMETHEUS_MULTIPROC_DIR, which the server sums.


@signals.worker_init.connect
def _serve_worker_metrics(sender: object = None, **kwargs: object) -> None:
    from healthorch import metrics

    prefork = "prefork" in str(getattr(sender, "pool_cls", ""))
    metrics.serve_from_environment(role="worker", forks=prefork)


@signals.beat_init.connect
def _serve_beat_metrics(**kwargs: object) -> None:
    from healthorch import metrics

    metrics.serve_from_environment(role="beat")


@signals.worker_process_shutdown.connect
def _forget_pool_process(pid: int | None = None, **kwargs: object) -> None:
    from healthorch import metrics

    if pid:
        metrics.process_exited(pid)
