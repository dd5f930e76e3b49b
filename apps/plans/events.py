"""What plans asks of the apps above it (connected in healthorch/wiring.py).

Plans knows no monitor, channel or member: the apps whose rows a limit counts, or whose rows a
plan change must adjust, answer here by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.tenants.models import Organization

#: Called after an organization's plan changed, inside the same transaction, as
#: `handler(org=, old_plan=, new_plan=)`; each returns a summary of what it did, recorded on
#: the PlanChange under its name (monitors pauses the monitors over the new limit, ...).
PlanChangeHandler = Callable[..., dict[str, Any]]
plan_change_handlers: dict[str, PlanChangeHandler] = {}

#: Counted limits: how many of a thing an organization has now, per limit name.
UsageCounter = Callable[["Organization"], int]
usage_counters: dict[str, UsageCounter] = {}


def on_plan_change(name: str, handler: PlanChangeHandler) -> None:
    """Run `handler` on every plan change (in the order connected; once per name)."""
    plan_change_handlers.setdefault(name, handler)


def count_usage_with(limit: str, counter: UsageCounter) -> None:
    """`counter(org)` says how much of the counted `limit` the organization uses."""
    usage_counters[limit] = counter
