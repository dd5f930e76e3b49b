"""Print an organization's monitors as a YAML document that apply_monitors takes back."""

from __future__ import annotations

import yaml
from django.core.management.base import BaseCommand

from apps.monitors import config_as_code, reporting


class Command(BaseCommand):
    help = "Export an organization's monitors as YAML (configuration as code, no secrets)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="organization (slug)")

    def handle(self, *args, **options) -> None:
        org = reporting.organization_option(options["org"])
        doc = config_as_code.document_export(org)
        self.stdout.write(config_as_code.EXPORT_HEADER, ending="")
        self.stdout.write(
            yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False),
            ending="",
        )
