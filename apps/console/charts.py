"""Small SVG charts drawn on the server: no JavaScript, no chart library, a few hundred bytes.

Values come from rollups (apps.monitors.rollups), never from raw results.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 24) -> SafeString:
    """A response-time line; gaps (hours without latency) break the line."""
    points = [v for v in values if v is not None]
    if not points:
        return mark_safe('<span class="quiet">no data</span>')
    top = max(points) or 1.0
    step = width / max(1, len(values) - 1)
    segments: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        y = height - 2 - (value / top) * (height - 4)
        segments[-1].append(f"{i * step:.1f},{y:.1f}")
    paths = "".join(
        f'<polyline fill="none" stroke="#417690" stroke-width="1.5" points="{" ".join(s)}"/>'
        for s in segments
        if s
    )
    return format_html(
        '<svg class="spark" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="response time, max {} ms">{}</svg>',
        width,
        height,
        width,
        height,
        round(top),
        mark_safe(paths),  # noqa: S308 - numbers we formatted above
    )


def _colour(ratio: float | None) -> str:
    if ratio is None:
        return "#ddd"
    if ratio >= 0.999:
        return "#2e7d32"
    if ratio >= 0.99:
        return "#9ccc65"
    if ratio >= 0.95:
        return "#ffb300"
    return "#c62828"


def uptime_bars(ratios: Sequence[float | None], *, height: int = 20) -> SafeString:
    """One bar per day (oldest first): green at 99.9 % and above, red below 95 %, grey: none."""
    bar, gap = 3, 1
    width = len(ratios) * (bar + gap)
    rects = "".join(
        f'<rect x="{i * (bar + gap)}" y="0" width="{bar}" height="{height}" '
        f'fill="{_colour(r)}"><title>{"no data" if r is None else f"{r * 100:.2f} %"}</title>'
        "</rect>"
        for i, r in enumerate(ratios)
    )
    return format_html(
        '<svg class="uptime" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="uptime per day, {} days">{}</svg>',
        width,
        height,
        width,
        height,
        len(ratios),
        mark_safe(rects),  # noqa: S308 - numbers and fixed colours only
    )
