"""How many monitors are healthy, down, down and critical, paused or not yet checked."""

from __future__ import annotations

from apps.core.commands import ReportCommand
from apps.core.tables import format_table
from apps.monitors import reporting


class Command(ReportCommand):
    help = "Monitor totals: healthy, unhealthy, critical unhealthy, paused, unknown."

    def report(self, **options) -> dict:
        self.org = reporting.organization_option(options["org"])
        return reporting.health_summary(org=self.org)

    def write_text(self, summary: dict) -> None:
        scope = f"organization {self.org.slug}" if self.org is not None else "all organizations"
        rows = [
            [label, summary[key]]
            for label, key in [
                ("total", "total"),
                ("healthy (up or degraded)", "healthy"),
                ("unhealthy (down)", "unhealthy"),
                ("critical unhealthy", "critical_unhealthy"),
                ("paused", "paused"),
                ("unknown", "unknown"),
                ("maintenance", "maintenance"),
            ]
        ]
        rows.append(["health percentage", f"{summary['health_percentage']:.2f}%"])
        for line in format_table([scope, "monitors"], rows):
            self.stdout.write(line)
