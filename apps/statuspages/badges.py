"""Monitor badges: SVG (flat style) and the Shields endpoint JSON.

Text width is estimated from per-character advance widths of an 11 px sans-serif (close to
Verdana, which most badge renderers use), grouped in classes; the estimate only has to keep
the text inside its box, so a few pixels of slack on either side are fine.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.template.loader import render_to_string

from apps.monitors.models import Monitor, MonitorStatus
from apps.reports.selectors import ROLLING_PERIODS, monitor_uptime

PERIODS = ROLLING_PERIODS

# Colours by name (the names are Shields' own, so shields.json passes them through).
COLORS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "lightgrey": "#9f9f9f",
}

STATUS_COLORS = {
    MonitorStatus.UP: "brightgreen",
    MonitorStatus.DEGRADED: "yellow",
    MonitorStatus.DOWN: "red",
    MonitorStatus.MAINTENANCE: "blue",
    MonitorStatus.PAUSED: "lightgrey",
    MonitorStatus.UNKNOWN: "lightgrey",
}

_NARROW = set("fijlrtI!.,:;'|()[] ")
_WIDE = set("mwMW@%")
_UPPER_OR_DIGIT = set("ABCDEFGHJKLNOPQRSTUVXYZ0123456789#$&?~+=<>_")


def text_width(text: str) -> float:
    """Estimated width in px of `text` at 11 px."""
    width = 0.0
    for ch in text:
        if ch in _NARROW:
            width += 3.9
        elif ch in _WIDE:
            width += 10.5
        elif ch in _UPPER_OR_DIGIT:
            width += 7.4
        else:
            width += 6.6
    return width


@dataclass(frozen=True)
class BadgeData:
    label: str
    message: str
    color: str  # a key of COLORS

    def shields(self) -> dict:
        return {
            "schemaVersion": 1,
            "label": self.label,
            "message": self.message,
            "color": self.color,
        }


UNKNOWN_STATUS = BadgeData("status", "unknown", "lightgrey")


def unknown(kind: str, period: str = "30d") -> BadgeData:
    """The grey badge for a missing, revoked or deleted monitor (never an error page)."""
    label = {"status": "status", "uptime": f"uptime {period}", "response": f"response {period}"}
    return BadgeData(label.get(kind, "status"), "unknown", "lightgrey")


def _uptime_color(pct: float) -> str:
    if pct >= 99.9:
        return "brightgreen"
    if pct >= 99:
        return "green"
    if pct >= 95:
        return "yellow"
    if pct >= 90:
        return "orange"
    return "red"


def _pct(value: float) -> str:
    if value >= 100:
        return "100%"
    return f"{int(value * 100) / 100:.2f}%"  # truncated: 99.996 is not "100%"


def status_badge(monitor: Monitor) -> BadgeData:
    status = monitor.status if not monitor.paused else MonitorStatus.PAUSED
    return BadgeData("status", str(status), STATUS_COLORS.get(status, "lightgrey"))


def uptime_badge(monitor: Monitor, period: str) -> BadgeData:
    """Uptime over the period from the SLA engine: the same figure as the uptime endpoint."""
    figures = monitor_uptime(monitor=monitor, windows=[period])[period]
    pct = figures["uptime_pct"]
    if pct is None:
        return BadgeData(f"uptime {period}", "no data", "lightgrey")
    return BadgeData(f"uptime {period}", _pct(pct), _uptime_color(pct))


def response_badge(monitor: Monitor, period: str) -> BadgeData:
    """Median response time over the period, coloured against the monitor's expectation."""
    figures = monitor_uptime(monitor=monitor, windows=[period])[period]
    p50 = figures["p50_ms"]
    if p50 is None:
        return BadgeData(f"response {period}", "no data", "lightgrey")
    expected = monitor.expected_response_time_ms or 1000
    color = "brightgreen" if p50 <= expected else "yellow" if p50 <= 2 * expected else "red"
    return BadgeData(f"response {period}", f"{p50:.0f} ms", color)


def svg(badge: BadgeData) -> str:
    pad = 6
    label_w = round(text_width(badge.label) + 2 * pad)
    message_w = round(text_width(badge.message) + 2 * pad)
    return render_to_string(
        "statuspages/badge.svg",
        {
            "label": badge.label,
            "message": badge.message,
            "color": COLORS[badge.color],
            "label_w": label_w,
            "message_w": message_w,
            "width": label_w + message_w,
            # SVG text is positioned at its centre (text-anchor: middle), in tenths of a px
            # with the font scaled by 10 so fractional positions stay crisp.
            "label_x": label_w * 5,
            "message_x": (label_w + message_w / 2) * 10,
            "label_len": round(text_width(badge.label) * 10),
            "message_len": round(text_width(badge.message) * 10),
        },
    )
