"""`{% monitor_charts original %}`: a monitor's charts on its console page.

The monitor's page is the monitors app's admin, which cannot know telemetry (an app below
it may not import one above); the page's template, in the project's templates, asks the
console for the charts here instead.
"""

from __future__ import annotations

from typing import Any

from django import template

from apps.console import telemetry

register = template.Library()


@register.inclusion_tag("admin/console/monitor_charts.html", takes_context=True)
def monitor_charts(context: template.Context, monitor: Any) -> dict[str, Any]:
    if monitor is None or getattr(monitor, "pk", None) is None:
        return {"monitor": None}
    return {"monitor": monitor, **telemetry.monitor_charts(context["request"], monitor)}


@register.filter
def series_value(value: float | None) -> str:
    """A chart's value in its table: up to three decimals, no trailing zeros (10.5, 1, 0.125)."""
    if value is None:
        return ""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
