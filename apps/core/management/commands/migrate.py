"""`manage.py migrate`, which builds an empty database in one step.

On a database without a single table the whole migration history is replayed for nothing but
its end: minutes on SQLite (the first `make run`) and for every test database. Here such a
database is built from the migrations' final state instead (`apps.core.schema_build`: tables,
recorded migrations, seeds, content types and permissions; a test proves the result equals
replaying every migration). Everything else is Django's own command: a database with tables,
a named app or migration, `--fake`, `--plan`, `--check`, `--prune`, or
`HEALTHORCH_BUILD_EMPTY_DATABASE=0` runs the migrations one by one.

A database part-way through a chain that a squashed migration replaced is refused by name:
Django would drop the squashed migration from its plan and leave the app short of its last
migrations without a word (docs/operations/deploying.md, "Squashed migrations").
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from apps.core import schema_build

# Options that ask migrate for something other than "bring this database up to date".
_SPECIFIC = ("app_label", "migration_name", "fake", "fake_initial", "plan", "check_unapplied")


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " An empty database is built in one step from the final state."

    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        _refuse_part_replaced_chains(database)
        loader = self._one_step_loader(database, options)
        if loader is None:
            super().handle(*args, **options)
            return
        verbose = options["verbosity"] >= 1
        if verbose:
            self.stdout.write("Empty database: building the schema in one step")
        result = schema_build.build_fresh(
            database,
            loader=loader,
            progress=(lambda line: self.stdout.write(f"  {line}")) if verbose else None,
        )
        if verbose:
            self.stdout.write(
                f"  {result.tables} tables, {result.migrations} migrations recorded as applied "
                f"in {result.seconds:.1f}s"
            )

    def _one_step_loader(self, database: str, options: dict[str, Any]) -> MigrationLoader | None:
        """The migration loader to build from, or None where Django's own migrate runs."""
        if not settings.HEALTHORCH_BUILD_EMPTY_DATABASE:
            return None
        if any(options.get(name) for name in _SPECIFIC) or options.get("prune"):
            return None
        if not schema_build.is_empty(database):
            return None
        loader = MigrationLoader(connections[database])
        # Apps without migrations would need Django's syncdb phase: none has tables today.
        if any(
            model._meta.managed and not model._meta.proxy
            for label in loader.unmigrated_apps
            for model in apps.get_app_config(label).get_models()
        ):
            return None
        return loader


def _refuse_part_replaced_chains(database: str) -> None:
    """Stop where some, not all, of the migrations a squashed one replaces are applied."""
    connection = connections[database]
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return
    applied = recorder.applied_migrations()
    loader = MigrationLoader(connection, ignore_no_migrations=True, replace_migrations=False)
    for (app, name), migration in sorted(loader.replacements.items()):
        missing = [key for key in migration.replaces if key not in applied]
        if missing and len(missing) < len(migration.replaces):
            raise CommandError(
                f"{app}.{name} replaces migrations this database has only in part; missing: "
                + ", ".join(f"{a}.{n}" for a, n in missing)
                + ". Migrate with the previous release first, up to "
                + f"{migration.replaces[-1][0]}.{migration.replaces[-1][1]} "
                + "(docs/operations/deploying.md, Squashed migrations)."
            )
