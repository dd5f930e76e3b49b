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
from rest_framework.exceptions import ValidationError

from apps.audit import services as audit
from apps.core.errors import ServiceError, UpgradeRequired
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
        try:
            # Audited as the system, named after the command (no person signs in here).
            with audit.acting_as(audit.system_actor("manage.py import_services")):
                done = config_as_code.services_import(org=org, doc=doc)
        except ValidationError as exc:
            for line in config_as_code.error_lines(exc.detail):
                self.stderr.write(line)
            raise CommandError(f"{path}: invalid, nothing was created.") from exc
        except UpgradeRequired as exc:
            raise CommandError(config_as_code.describe_upgrade(exc)) from exc
        except ServiceError as exc:
            raise CommandError(f"{exc.detail} Nothing was created.") from exc
        for warning in done.warnings:
            self.stderr.write(f"warning: {warning}")
        for monitor in done.created:
            self.stdout.write(f"+ {monitor.slug}  {monitor.config['url']}")
        self.stdout.write(f"created {len(done.created)} monitors in {org.slug}")
