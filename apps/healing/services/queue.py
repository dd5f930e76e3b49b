"""The one place healing enqueues work (tests replace `send` with a recorder they drain)."""

from __future__ import annotations


def send(what: str, attempt_id: str, countdown: float | None = None) -> None:
    """Nudge a worker: "execute" or "verify" an attempt."""
    from apps.healing import tasks

    task = tasks.healing_execute if what == "execute" else tasks.healing_verify
    task.apply_async(args=[attempt_id], countdown=countdown)
