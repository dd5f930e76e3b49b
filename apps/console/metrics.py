"""The platform's backlogs as Prometheus gauges, read when beat's /metrics is scraped.

Connected in healthorch/wiring.py (`metrics.read_state_with`). Two aggregate queries over
indexed sets, whatever the platform's size: the scheduler's due checks (the dashboard's own
figure) and the notification outbox's unfinished rows (the sweep's partial index).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone

from apps.alerts.models import CLAIMABLE, Notification
from apps.console.figures import scheduler_lag


def platform_state() -> Iterator[tuple[str, str, float]]:
    now = timezone.now()
    lag = scheduler_lag(now)
    yield "scheduler_checks_due", "Checks due now that the dispatcher has not claimed", lag["due"]
    yield (
        "scheduler_oldest_due_seconds",
        "How long the oldest unclaimed due check has been due (0 when none is)",
        lag["seconds"],
    )
    # Held rows (grouping) wait on purpose until their batch is flushed: not a backlog.
    row = Notification.objects.filter(
        status__in=CLAIMABLE, hold_until__isnull=True, next_attempt_at__lte=now
    ).aggregate(due=Count("pk"), oldest=Min("next_attempt_at"))
    oldest = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    yield "notifier_outbox_due", "Notifications due for delivery and not sent yet", row["due"]
    yield (
        "notifier_outbox_oldest_due_seconds",
        "How long the oldest undelivered notification has been due (0 when none is)",
        round(oldest, 1),
    )
