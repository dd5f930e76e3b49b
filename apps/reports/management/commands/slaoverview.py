"""Operators' platform-wide SLA view: organizations meeting their target, the average, the worst."""

from __future__ import annotations

from apps.core.commands import ReportCommand
from apps.core.tables import format_table
from apps.reports.selectors import platform_sla_overview


class Command(ReportCommand):
    help = "Platform SLA over the last N days: compliant organizations, average, worst ten."

    by_organization = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=30, choices=range(1, 91), metavar="1-90")
        super().add_arguments(parser)

    def report(self, **options) -> dict:
        return platform_sla_overview(days=options["days"])

    def write_text(self, overview: dict) -> None:
        self.stdout.write(
            f"{overview['organizations']} organizations, {overview['compliant']} meet their "
            f"plan's target, average availability {overview['average_availability_pct']} %"
        )
        rows = [
            [
                r["organization"],
                r["plan"],
                r["monitors"],
                r["availability_pct"],
                r["target_pct"],
                "yes" if r["compliant"] else "no",
            ]
            for r in overview["worst"]
        ]
        for line in format_table(
            ["organization", "plan", "monitors", "availability %", "target %", "compliant"], rows
        ):
            self.stdout.write(line)
