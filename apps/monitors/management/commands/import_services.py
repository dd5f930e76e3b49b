"""Create HTTP monitors from a services file:

    {"check_interval_seconds": 300, "timeout_seconds": 10, "max_consecutive_failures": 5,
     "services": [{"name": "interpreter", "url": "http://host:5120/health",
                   "critical": true, "expected_response_time": 2.0}]}

All or nothing: every entry is validated first, then all are created in one transaction.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.monitors import config_as_code, reporting


class Command(BaseCommand):
    help = "Create one HTTP monitor per service listed in a JSON file (all or nothing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="path of the JSON services file")
        parser.add_argument("--org", required=True, help="organization (slug)")

    def handle(self, *args, **options) -> None:
        org = reporting.organization_option(options["org"])
        path = Path(options["file"])
        try:
            doc = json.loads(path.read_text())
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON: {exc}") from exc
        with config_as_code.command_write(self, str(path), name="import_services", done="created"):
            done = config_as_code.services_import(org=org, doc=doc)
        for warning in done.warnings:
            self.stderr.write(f"warning: {warning}")
        for monitor in done.created:
            self.stdout.write(f"+ {monitor.slug}  {monitor.config['url']}")
        self.stdout.write(f"created {len(done.created)} monitors in {org.slug}")
