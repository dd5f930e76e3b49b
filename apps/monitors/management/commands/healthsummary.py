"""How many monitors are healthy, down, down and critical, paused or not yet checked."""

from __future__ import annotations

from apps.core.commands import ReportCommand
from apps.core.tables import format_table
from apps.monitors import reporting


class Command(ReportCommand):
    help = "Monitor totals: healthy, unhealthy, critical unhealthy, paused, unknown."

    def handle(self, *args, **options) -> None:
        org = reporting.organization_option(options["org"])
        summary = reporting.health_summary(org=org)
        if options["json"]:
            self.write_json(summary)
            return
        scope = f"organization {org.slug}" if org is not None else "all organizations"
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
