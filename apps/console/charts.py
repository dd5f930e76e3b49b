"""Small SVG charts drawn on the server: no JavaScript, no chart library, a few hundred bytes
(a series chart a few kilobytes).

Values come from rollups (apps.monitors.rollups) or from series downsampled in SQL
(apps.telemetry.selectors.metric_series), never from raw rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def series_chart(
    points: Sequence[Any],
    *,
    since: datetime,
    until: datetime,
    step: int,
    label: str,
    unit: str = "",
    threshold: float | None = None,
    width: int = 720,
    height: int = 180,
) -> SafeString:
    """A downsampled series over [since, until): the average as a line, the min-max band
    shaded behind it, the 95th percentile dashed. `points` have `t`, `avg`, `min`, `max` and
    `p95` (telemetry's `Point`, or a monitor's hourly latency); a gap of more than one step
    breaks the line. Scaled from zero (or the lowest value, if below zero) to the highest."""
    if not points:
        return mark_safe('<p class="quiet series-empty">No samples in this range.</p>')
    left, right, top, bottom = 52, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    highs = [p.max for p in points] + ([threshold] if threshold is not None else [])
    lows = [p.min for p in points] + ([threshold] if threshold is not None else [])
    hi, lo = max(highs), min(0.0, min(lows))
    if hi <= lo:
        hi = lo + 1.0
    span = (until - since).total_seconds() or 1.0

    def x(t: datetime) -> float:
        return left + min(1.0, max(0.0, (t - since).total_seconds() / span)) * plot_w

    def y(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    runs: list[list[Any]] = [[]]
    for p in points:
        if runs[-1] and (p.t - runs[-1][-1].t).total_seconds() > step * 1.5:
            runs.append([])
        runs[-1].append(p)
    parts = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}" stroke="#767676"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_fmt(hi)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{_fmt(lo)}</text>',
        f'<text x="{left}" y="{height - 6}">{since:%Y-%m-%d %H:%M}</text>',
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">'
        f"{until:%Y-%m-%d %H:%M} UTC</text>",
    ]
    for run in runs:
        if len(run) == 1:
            p = run[0]
            parts.append(
                f'<line class="band" x1="{x(p.t):.1f}" y1="{y(p.max):.1f}" x2="{x(p.t):.1f}" '
                f'y2="{y(p.min):.1f}" stroke="#9ec3d6" stroke-width="3"/>'
                f'<circle class="avg" cx="{x(p.t):.1f}" cy="{y(p.avg):.1f}" r="2" fill="#205067"/>'
            )
            continue
        band = [f"{x(p.t):.1f},{y(p.max):.1f}" for p in run]
        band += [f"{x(p.t):.1f},{y(p.min):.1f}" for p in reversed(run)]
        parts.append(
            f'<polygon class="band" fill="#9ec3d6" opacity="0.6" points="{" ".join(band)}"/>'
        )
        p95 = " ".join(f"{x(p.t):.1f},{y(p.p95):.1f}" for p in run)
        parts.append(
            f'<polyline class="p95" fill="none" stroke="#8a4b08" stroke-width="1" '
            f'stroke-dasharray="4 3" points="{p95}"/>'
        )
        avg = " ".join(f"{x(p.t):.1f},{y(p.avg):.1f}" for p in run)
        parts.append(
            f'<polyline class="avg" fill="none" stroke="#205067" stroke-width="1.5" '
            f'points="{avg}"/>'
        )
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="{left}" y1="{y(threshold):.1f}" x2="{left + plot_w}" '
            f'y2="{y(threshold):.1f}" stroke="#c62828" stroke-dasharray="2 2"/>'
        )
    mean = sum(p.avg * p.count for p in points) / (sum(p.count for p in points) or 1)
    suffix = f" {unit}" if unit else ""
    summary = (
        f"{label}: {len(points)} points from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} "
        f"UTC, average {_fmt(mean)}{suffix}, lowest {_fmt(min(p.min for p in points))}{suffix}, "
        f"highest {_fmt(max(p.max for p in points))}{suffix}"
    )
    return format_html(
        '<svg class="series-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        summary,
        mark_safe("".join(parts)),  # noqa: S308 - numbers and dates we formatted above
    )
