"""The Celery app. Periodic schedules live in healthorch.schedules (one place)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from celery import Celery, Task, signals
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")

# The embedded broker writes each message whole or not at all, and skips one it cannot read,
# so a full disk cannot leave a torn message that stops the worker (apps/core/fsbroker.py).
TRANSPORT_ALIASES["filesystem"] = "apps.core.fsbroker:Transport"

# A late-acknowledged message must be acknowledged before the broker's visibility timeout, or
# it is handed to a second worker while the first still holds it: a delayed task waits its
# countdown and then runs up to its time limit, all while unacknowledged.
VISIBILITY_MARGIN_SECONDS = 5


class BoundedDelayTask(Task):
    """Shortens a countdown (or eta) that would outlast the broker's visibility timeout.

    Every delayed task in the product re-reads its row and does nothing before the row says it
    is due (a notification's next attempt, a healing verification), and a periodic sweep sends
    the work when it falls due; so a nudge that comes early is harmless, while one that
    outlives the timeout would be copied to another worker every timeout until it runs.
    Brokers without a visibility timeout (the embedded filesystem broker) are left alone.
    """

    def apply_async(
        self,
        args=None,
        kwargs=None,
        task_id=None,
        producer=None,
        link=None,
        link_error=None,
        shadow=None,
        **options,
    ):
        longest = longest_delay(self)
        if longest is not None:
            delay = options.get("countdown")
            eta = options.pop("eta", None)
            if eta is not None:
                delay = (eta - datetime.now(UTC)).total_seconds()
            if delay is not None:
                options["countdown"] = max(0.0, min(float(delay), longest))
        return super().apply_async(
            args, kwargs, task_id, producer, link, link_error, shadow, **options
        )


def longest_delay(task: Task) -> float | None:
    """The longest countdown `task` may be sent with (None: any), given the broker's timeout."""
    timeout = (task.app.conf.broker_transport_options or {}).get("visibility_timeout")
    acks_late = task.acks_late if task.acks_late is not None else task.app.conf.task_acks_late
    if timeout is None or not acks_late:
        return None
    runtime = task.time_limit or task.app.conf.task_time_limit or 0
    return max(0.0, float(timeout) - runtime - VISIBILITY_MARGIN_SECONDS)


app = Celery("healthorch", task_cls=BoundedDelayTask)
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
