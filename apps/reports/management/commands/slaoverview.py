"""Operators' platform-wide SLA view: organizations meeting their target, the average, the worst."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from apps.core.tables import format_table
from apps.reports.selectors import platform_sla_overview


class Command(BaseCommand):
    help = "Platform SLA over the last N days: compliant organizations, average, worst ten."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=30, choices=range(1, 91), metavar="1-90")
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def handle(self, *args, **options) -> None:
        overview = platform_sla_overview(days=options["days"])
        if options["json"]:
            self.stdout.write(json.dumps(overview, indent=2))
            return
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
