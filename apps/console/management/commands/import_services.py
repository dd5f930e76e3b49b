"""Create what a services file describes: one HTTP monitor per service (with its tags), and
its alert_rules, alerting channels and self_healing policies (apps.console.services_file has
the format). All or nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.console.services_file import services_file_import
from apps.monitors import config_as_code
from apps.tenants.models import Organization


class Command(BaseCommand):
    help = (
        "Create one HTTP monitor per service listed in a JSON file, with the file's alert "
        "rules, channels and healing policies (all or nothing)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="path of the JSON services file")
        parser.add_argument("--org", required=True, help="organization (slug)")

    def handle(self, *args, **options) -> None:
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization with the slug '{options['org']}'.", returncode=2)
        path = Path(options["file"])
        try:
            doc = json.loads(path.read_text())
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON: {exc}") from exc
        with config_as_code.command_write(self, str(path), name="import_services", done="created"):
            done = services_file_import(org=org, doc=doc)
        for warning in done.warnings:
            self.stderr.write(f"warning: {warning}")
        for monitor in done.monitors:
            self.stdout.write(f"+ {monitor.slug}  {monitor.config['url']}")
        for kind in done.rules:
            self.stdout.write(f"~ alert rule {kind}")
        for name in done.channels:
            self.stdout.write(f"+ channel {name}")
        for name in done.policies:
            self.stdout.write(f"+ healing policy {name}")
        self.stdout.write(
            f"created {len(done.monitors)} monitors, {len(done.channels)} channels and "
            f"{len(done.policies)} healing policies in {org.slug}; "
            f"{len(done.rules)} alert rules changed"
        )
