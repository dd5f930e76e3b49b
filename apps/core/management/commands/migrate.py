"""`manage.py migrate`, which builds an empty database in one step.

On a database without a single table the whole migration history is replayed for nothing but
its end: minutes on SQLite (the first `make run`) and for every test database. Here such a
database is built from the migrations' final state instead (`apps.core.schema_build`: tables,
recorded migrations, seeds, content types and permissions; a test proves the result equals
replaying every migration). Everything else is Django's own command: a database with tables,
a named app or migration, `--fake`, `--plan`, `--check`, `--prune`, or
`HEALTHORCH_BUILD_EMPTY_DATABASE=0` runs the migrations one by one.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from apps.core import schema_build

# Options that ask migrate for something other than "bring this database up to date".
_SPECIFIC = ("app_label", "migration_name", "fake", "fake_initial", "plan", "check_unapplied")


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " An empty database is built in one step from the final state."

    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        if not self._builds_in_one_step(database, options):
            super().handle(*args, **options)
            return
        verbose = options["verbosity"] >= 1
        if verbose:
            self.stdout.write("Empty database: building the schema in one step")
        result = schema_build.build_fresh(
            database, progress=(lambda line: self.stdout.write(f"  {line}")) if verbose else None
        )
        if verbose:
            self.stdout.write(
                f"  {result.tables} tables, {result.migrations} migrations recorded as applied "
                f"in {result.seconds:.1f}s"
            )

    def _builds_in_one_step(self, database: str, options: dict[str, Any]) -> bool:
        if not settings.HEALTHORCH_BUILD_EMPTY_DATABASE:
            return False
        if any(options.get(name) for name in _SPECIFIC) or options.get("prune"):
            return False
        if not schema_build.is_empty(database):
            return False
        # Apps without migrations would need Django's syncdb phase: none has tables today.
        unmigrated = MigrationLoader(connections[database]).unmigrated_apps
        return not any(
            model._meta.managed and not model._meta.proxy
            for label in unmigrated
            for model in apps.get_app_config(label).get_models()
        )
