"""Run every active monitor once, now, and print what each check found."""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.core.commands import ReportCommand
from apps.core.tables import format_table
from apps.monitors import engine, reporting

ERROR_WIDTH = 80


class Command(ReportCommand):
    help = "Check every active monitor now (--once) and print the results."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="run one round now and exit")
        super().add_arguments(parser)

    def handle(self, *args, **options) -> None:
        if not options["once"]:
            raise CommandError(
                "Continuous checking is done by Celery beat and the workers (`make run` starts "
                "them); use --once to run every active monitor a single time now."
            )
        org = reporting.organization_option(options["org"])
        monitors = reporting.runnable_monitors(org=org)
        results = {}
        # Batches as the scheduler sizes them, so a large installation is not one huge gather.
        for start in range(0, len(monitors), engine.TASK_BATCH):
            batch = monitors[start : start + engine.TASK_BATCH]
            results.update({r.monitor_id: r for r in engine.run_monitors([m.pk for m in batch])})
        # A monitor paused while the round ran has no result; it is left out, not shown as failed.
        checked = [(m, results[m.pk]) for m in monitors if m.pk in results]
        if options["json"]:
            doc = [
                {
                    "organization": m.organization.slug,
                    "slug": m.slug,
                    "name": m.name,
                    "kind": m.kind,
                    "outcome": r.outcome,
                    "response_time_ms": r.response_time_ms,
                    "status_code": r.status_code,
                    "error_class": r.error_class,
                    "error_message": r.error_message,
                    "checked_at": r.checked_at.isoformat(),
                }
                for m, r in checked
            ]
            self.write_json(doc)
            return
        if not checked:
            self.stdout.write("no active monitors")
            return
        header = ["name", "kind", "outcome", "ms", "error"]
        rows = [
            [
                m.name,
                m.kind,
                r.outcome,
                None if r.response_time_ms is None else f"{r.response_time_ms:.0f}",
                _error(r.error_class, r.error_message),
            ]
            for m, r in checked
        ]
        if org is None:
            header.insert(0, "organization")
            rows = [[m.organization.slug, *row] for (m, _), row in zip(checked, rows, strict=True)]
        for line in format_table(header, rows):
            self.stdout.write(line)
        tally = {}
        for _, r in checked:
            tally[r.outcome] = tally.get(r.outcome, 0) + 1
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items()))
        self.stdout.write(f"\n{len(checked)} checked: {counts}")


def _error(error_class: str, message: str) -> str | None:
    text = f"{error_class}: {message}" if error_class else message
    if not text:
        return None
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"
