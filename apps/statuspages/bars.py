"""The 90-day uptime bars: one value per UTC day from rollups, drawn as one inline SVG per
monitor (no JavaScript; the rectangles' <title> is the tooltip).

Built as strings here rather than in a template loop: 50 monitors x 90 days is 4,500 bars,
which Django's template engine renders in tens of milliseconds, a format string in a few.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

BAR_WIDTH, BAR_GAP, BAR_HEIGHT = 4, 1, 28


@dataclass(slots=True)
class DayBar:
    day: date
    up: int = 0  # up + degraded: degraded is reachable, so it counts as up
    down: int = 0

    @property
    def checks(self) -> int:
        return self.up + self.down

    @property
    def uptime(self) -> float | None:
        return 100 * self.up / self.checks if self.checks else None

    @property
    def state(self) -> str:
        uptime = self.uptime
        if uptime is None:
            return "nodata"
        if uptime >= 100:
            return "up"
        return "partial" if uptime >= 99 else "down"

    def label(self) -> str:
        if self.uptime is None:
            return f"{self.day:%b %d, %Y}: no data"
        return f"{self.day:%b %d, %Y}: {format_pct(self.uptime)} uptime ({self.checks} checks)"


def format_pct(value: float | None) -> str:
    if value is None:
        return "no data"
    if value >= 100:
        return "100%"
    # Never round 99.996 up to "100%": the visitor would not see the outage.
    return f"{int(value * 100) / 100:.2f}%"


def svg(bars: list[DayBar], name: str) -> str:
    """An inline SVG of the bars; `name` must already be HTML-escaped."""
    step = BAR_WIDTH + BAR_GAP
    width = step * len(bars) - BAR_GAP
    rects = "".join(
        f'<rect x="{i * step}" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" rx="1" '
        f'class="bar bar-{bar.state}"><title>{bar.label()}</title></rect>'
        for i, bar in enumerate(bars)
    )
    return (
        f'<svg class="bars" viewBox="0 0 {width} {BAR_HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{name}: daily uptime over {len(bars)} days">{rects}</svg>'
    )


def overall_uptime(bars: list[DayBar]) -> float | None:
    up = sum(b.up for b in bars)
    total = sum(b.checks for b in bars)
    return 100 * up / total if total else None
