"""The 90-day uptime bars: one value per UTC day from rollups, drawn as one inline SVG per
monitor (no JavaScript; each rectangle's <title> is its tooltip).

Kept as two small int lists per monitor rather than an object per day, and drawn with format
strings rather than a template loop: 50 monitors x 90 days is 4,500 bars, and per-bar objects
or template nodes cost tens of milliseconds (allocation and the cyclic GC it triggers) where
these cost a few.
"""

from __future__ import annotations

from datetime import date

BAR_WIDTH, BAR_GAP, BAR_HEIGHT = 4, 1, 28


class DayBars:
    """Checks per day for one monitor: `up` (up + degraded: degraded is reachable, so it
    counts as up) and `down`, oldest day first."""

    __slots__ = ("down", "first", "up")

    def __init__(self, first: date, days: int) -> None:
        self.first = first
        self.up = [0] * days
        self.down = [0] * days

    def __len__(self) -> int:
        return len(self.up)

    def overall(self) -> float | None:
        up, total = sum(self.up), sum(self.up) + sum(self.down)
        return 100 * up / total if total else None


def bar_state(pct: float) -> str:
    """A day's colour: no downtime, under 1 % down, or more (the page's legend)."""
    return "up" if pct >= 100 else "partial" if pct >= 99 else "down"


def format_pct(value: float | None) -> str:
    if value is None:
        return "no data"
    if value >= 100:
        return "100%"
    # Never round 99.996 up to "100%": the visitor would not see the outage.
    return f"{int(value * 100) / 100:.2f}%"


def day_labels(days: list[date]) -> list[str]:
    """The date part of each tooltip, formatted once per page, not once per bar."""
    return [f"{day:%b %d, %Y}" for day in days]


def svg(bars: DayBars, labels: list[str], name: str) -> str:
    """An inline SVG of the bars; `name` must already be HTML-escaped."""
    step = BAR_WIDTH + BAR_GAP
    width = step * len(bars) - BAR_GAP
    parts = []
    for i in range(len(bars)):
        total = bars.up[i] + bars.down[i]
        if total:
            pct = 100 * bars.up[i] / total
            state = bar_state(pct)
            text = f"{labels[i]}: {format_pct(pct)} uptime ({total} checks)"
        else:
            state, text = "nodata", f"{labels[i]}: no data"
        parts.append(
            f'<rect x="{i * step}" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" '
            f'class="bar bar-{state}"><title>{text}</title></rect>'
        )
    return (
        f'<svg class="bars" viewBox="0 0 {width} {BAR_HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{name}: daily uptime over {len(bars)} days">'
        f"{''.join(parts)}</svg>"
    )
