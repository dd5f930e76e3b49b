"""A fresh database built from the migrations' final state in one step.

Running every migration on an empty SQLite file takes minutes: Django renders the project
state again for each of them, and SQLite remakes a table for every altered column. An empty
database does not need the history, only its end. `build_fresh` asks the migration loader for
the state after the last migration of every app, creates each model's table from it in one
schema transaction, records every migration as applied (a squashed one under the names it
replaces too, as `migrate` does), runs the data steps marked as seeds
(`RunPython(..., hints={"seed": True})`, such as the plan table's) and the steps that shape
the schema beyond what model state can say (`hints={"schema": True}`, such as partitioning the
results tables on PostgreSQL) against that final state, and sends the same pre- and
post-migrate signals `migrate` sends (content types, permissions).
Every other data step moves or rewrites rows an empty database does not have, often with SQL
written for the schema of its day, so it is skipped.

Built from the migration state, not the live models, so a model edited without its migration
cannot slip in. `manage.py migrate` calls it for an empty database (see its command in this
app); `tests/core/test_schema_build.py` compares a built database with a migrated one (tables,
columns, indexes, constraints, seeded rows) and migrates a built one further.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections, migrations, router
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

DATA_OPERATIONS = (migrations.RunPython, migrations.RunSQL)


def is_seed(operation: migrations.operations.base.Operation) -> bool:
    """A data step that inserts rows a fresh database needs (it says so in its hints)."""
    return isinstance(operation, DATA_OPERATIONS) and bool(operation.hints.get("seed"))


def shapes_schema(operation: migrations.operations.base.Operation) -> bool:
    """A step that changes the schema in ways model state cannot describe (a partitioned
    table): a fresh database needs it as much as its tables (it says so in its hints)."""
    return isinstance(operation, DATA_OPERATIONS) and bool(operation.hints.get("schema"))


@dataclass(frozen=True)
class BuildResult:
    tables: int
    migrations: int
    data_steps: int
    seconds: float


def is_empty(alias: str = "default") -> bool:
    """No table at all: nothing a migration history could be needed for."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        return not connection.introspection.table_names(cursor)


def build_fresh(
    alias: str = "default",
    *,
    loader: MigrationLoader | None = None,
    progress: Callable[[str], None] | None = None,
) -> BuildResult:
    """Create the schema of an empty database from the migrations' final state (see above)."""
    started = time.monotonic()

    def say(step: str) -> None:
        if progress is not None:
            progress(f"{step} ({time.monotonic() - started:.1f}s)")

    connection = connections[alias]
    if not is_empty(alias):
        raise RuntimeError(f"database {alias!r} has tables already; use migrate")
    loader = loader or MigrationLoader(connection)
    loader.check_consistent_history(connection)
    plan = _full_plan(loader)
    state = loader.project_state()
    models = [
        model
        for model in state.apps.get_models()
        if model._meta.managed
        and not model._meta.proxy
        and router.allow_migrate_model(alias, model)
    ]
    say(f"read {len(plan)} migrations")
    emit_pre_migrate_signal(0, False, alias, apps=state.apps, plan=[(m, False) for m in plan])

    with connection.schema_editor(atomic=True) as editor:
        for model in models:
            editor.create_model(model)
    say(f"created {len(models)} tables")

    recorder = MigrationRecorder(connection)
    recorder.ensure_schema()
    recorder.migration_qs.bulk_create(
        recorder.Migration(app=app, name=name) for app, name in _recorded(plan)
    )
    data_steps = 0
    with connection.schema_editor(atomic=True) as editor:
        for migration in plan:
            for operation in migration.operations:
                if is_seed(operation) or shapes_schema(operation):
                    operation.database_forwards(migration.app_label, editor, state, state)
                    data_steps += 1
    say(f"recorded {len(plan)} migrations, ran {data_steps} seed steps")

    emit_post_migrate_signal(0, False, alias, apps=state.apps, plan=[(m, False) for m in plan])
    say("content types and permissions")
    return BuildResult(len(models), len(plan), data_steps, time.monotonic() - started)


def _recorded(plan: list[migrations.Migration]) -> list[tuple[str, str]]:
    """What `migrate` records for these migrations: a squashed migration under its own name
    and under each name it replaces (were only its own name recorded, the loader would see none
    of the replaced ones applied, count the squashed one unapplied and run it again)."""
    found = []
    for migration in plan:
        found += [tuple(key) for key in migration.replaces or ()]
        found.append((migration.app_label, migration.name))
    return found


def _full_plan(loader: MigrationLoader) -> list[migrations.Migration]:
    """Every migration of every app, each after its dependencies (the order migrate uses)."""
    seen: set[tuple[str, str]] = set()
    plan = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for key in loader.graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(loader.graph.nodes[key])
    return plan
