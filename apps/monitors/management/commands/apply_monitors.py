"""Make an organization's monitors match a YAML or JSON document (see export_monitors)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from apps.monitors import config_as_code, reporting


class Command(BaseCommand):
    help = "Create, update (and with --prune delete) monitors to match a document, by slug."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="YAML or JSON document; - reads standard input")
        parser.add_argument("--org", required=True, help="organization (slug)")
        parser.add_argument(
            "--prune", action="store_true", help="delete the organization's monitors not listed"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print the plan and change nothing"
        )

    def handle(self, *args, **options) -> None:
        org = reporting.organization_option(options["org"])
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
            doc = yaml.safe_load(text)
        except OSError as exc:
            raise CommandError(f"{name}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise CommandError(f"{name}: not valid YAML or JSON: {exc}") from exc
        with config_as_code.command_write(
            self, name, name="apply_monitors", done="changed", notes=True
        ):
            applied = config_as_code.document_apply(
                org, doc, prune=options["prune"], dry_run=options["dry_run"]
            )
        plan = applied.plan
        for line in plan.lines():
            self.stdout.write(line)
        created, updated = len(plan.creates), len(plan.updates)
        deleted, unchanged = len(plan.deletes), len(plan.unchanged)
        if options["dry_run"]:
            self.stdout.write(
                f"dry run, nothing changed: {created} to create, {updated} to update, "
                f"{deleted} to delete, {unchanged} unchanged"
            )
        elif plan.has_changes:
            self.stdout.write(
                f"applied to {org.slug}: {created} created, {updated} updated, "
                f"{deleted} deleted, {unchanged} unchanged"
            )
        else:
            self.stdout.write(f"no changes in {org.slug}: {unchanged} unchanged")
