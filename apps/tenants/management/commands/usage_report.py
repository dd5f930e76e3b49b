"""Print every organization's usage this billing period, as a table or JSON."""

from __future__ import annotations

from apps.core.commands import ReportCommand
from apps.plans.selectors import usage_report
from apps.tenants.models import Organization


class Command(ReportCommand):
    help = "Usage of every organization this billing period next to its plan limits."

    def handle(self, *args, **options) -> None:
        orgs = Organization.objects.select_related("plan").order_by("slug")
        if options["org"]:
            orgs = orgs.filter(slug=options["org"])
        rows = [(org, usage_report(org=org)) for org in orgs]
        if options["json"]:
            doc = [{"organization": org.slug, **report} for org, report in rows]
            self.write_json(doc, default=str)
            return
        if not rows:
            self.stdout.write("no organizations")
            return
        metrics = list(rows[0][1]["usage"])
        header = ["organization", "plan", *metrics]
        table = [header]
        for org, report in rows:
            cells = [org.slug, report["plan"]]
            for metric in metrics:
                item = report["usage"][metric]
                cap = "∞" if item["limit"] is None else str(item["limit"])
                cells.append(
                    f"{item['used']}/{cap}" if item["limit"] is not None else str(item["used"])
                )
            table.append(cells)
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for n, row in enumerate(table):
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            if n == 0:
                self.stdout.write("  ".join("-" * w for w in widths))
