"""What the operators' report commands share: `--json` (one JSON document instead of a
table) and, where a report can be narrowed, `--org` (one organization, by slug)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core.management.base import BaseCommand


class ReportCommand(BaseCommand):
    #: False for platform-wide reports that cannot be narrowed to one organization
    by_organization: ClassVar[bool] = True

    def add_arguments(self, parser) -> None:
        if self.by_organization:
            parser.add_argument("--org", help="only this organization (slug)")
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def write_json(self, doc: Any, **dumps: Any) -> None:
        self.stdout.write(json.dumps(doc, indent=2, **dumps))
