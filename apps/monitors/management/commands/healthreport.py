"""Per monitor: status, when it was last healthy, failures in a row and uptime over 24 h."""

from __future__ import annotations

from apps.core.commands import ReportCommand
from apps.core.tables import format_table
from apps.monitors import reporting


class Command(ReportCommand):
    help = "Health of every monitor: status, last healthy, consecutive failures, 24 h uptime."

    def report(self, **options) -> list[dict]:
        self.org = reporting.organization_option(options["org"])
        return reporting.health_report(org=self.org)

    def write_text(self, report: list[dict]) -> None:
        if not report:
            self.stdout.write("no monitors")
            return
        header = ["name", "kind", "status", "critical", "last healthy", "failures", "uptime 24h"]
        rows = [
            [
                row["name"],
                row["kind"],
                row["status"],
                "yes" if row["critical"] else "",
                row["last_up_at"],
                row["consecutive_failures"],
                None if row["uptime_24h"] is None else f"{row['uptime_24h']:.2f}%",
            ]
            for row in report
        ]
        if self.org is None:
            header.insert(0, "organization")
            rows = [[r["organization"], *row] for r, row in zip(report, rows, strict=True)]
        for line in format_table(header, rows):
            self.stdout.write(line)
