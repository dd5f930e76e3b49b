"""The one place healing enqueues work (tests replace `send` with a recorder they drain).

Tasks are named, not imported: apps.healing.tasks imports these services (see apps.core.queueing).
"""

from __future__ import annotations

from apps.core import queueing


def send(what: str, attempt_id: str, countdown: float | None = None) -> None:
    """Nudge a worker: "execute" or "verify" an attempt."""
    name = "healing_execute" if what == "execute" else "healing_verify"
    queueing.task(f"apps.healing.tasks.{name}").apply_async(args=[attempt_id], countdown=countdown)
