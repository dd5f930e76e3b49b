"""What the operators' report commands share: `--json` (one JSON document instead of a
table) and, where a report can be narrowed, `--org` (one organization, by slug)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core.management.base import BaseCommand


class ReportCommand(BaseCommand):
    """A report reads its document in `report(**options)` and prints it as text in
    `write_text(doc)`; with `--json` the document is printed as it is."""

    #: False for platform-wide reports that cannot be narrowed to one organization
    by_organization: ClassVar[bool] = True

    def handle(self, *args: Any, **options: Any) -> None:
        doc = self.report(**options)
        if options["json"]:
            self.write_json(doc)
        else:
            self.write_text(doc)

    def report(self, **options: Any) -> Any:
        raise NotImplementedError

    def write_text(self, doc: Any) -> None:
        raise NotImplementedError

    def add_arguments(self, parser) -> None:
        if self.by_organization:
            parser.add_argument("--org", help="only this organization (slug)")
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def write_json(self, doc: Any, **dumps: Any) -> None:
        self.stdout.write(json.dumps(doc, indent=2, **dumps))
