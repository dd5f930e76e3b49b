"""Plain-text tables for the operator commands (`runchecks`, `healthreport`, `slaoverview`...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned columns under a dashed rule, as the other operator commands print."""
    table = [[str(c) for c in header], *([("-" if c is None else str(c)) for c in r] for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
