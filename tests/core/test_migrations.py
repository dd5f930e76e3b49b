"""The squashed migration chains: a database at the old heads is up to date, one short of them
is refused by `migrate`, and the models need no new migration.

Replaying every migration on an empty database (SQLite and PostgreSQL) is
tests/core/test_schema_build.py's `migrated` database; that a database the old chains made
upgrades as a no-op with the same schema, partitions included, is proved by
scripts/check_squash_upgrade.py (it needs the old code, from git).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db

# The last migration of each app before the squash, and the migration that replaces the chain
# (docs/operations/deploying.md names the same).
OLD_HEADS = {
    ("tenants", "0003_invitations_and_required_mfa"): "0002_squashed_0003_plan_invitations_mfa",
    ("plans", "0004_telemetry_limits"): "0001_squashed_0004_plans",
    ("monitors", "0009_partition_results_by_day"): "0001_squashed_0009_monitors",
    ("incidents", "0004_slo_burn_rule"): "0001_squashed_0004_incidents",
    ("healing", "0002_actor_api_keys"): "0001_squashed_0002_healing",
    ("statuspages", "0002_actor_api_keys"): "0001_squashed_0002_statuspages",
}


def _at_old_heads() -> None:
    """Make the recorded history what a database migrated by the old chains has: the replaced
    names, none of the squashed ones."""
    recorder = MigrationRecorder(connection)
    for (app, _head), squashed in OLD_HEADS.items():
        recorder.migration_qs.filter(app=app, name=squashed).delete()


def test_the_models_need_no_new_migration():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_each_squashed_migration_replaces_its_whole_old_chain():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for (app, head), squashed in OLD_HEADS.items():
        migration = loader.disk_migrations[(app, squashed)]
        replaced = [name for label, name in migration.replaces if label == app]
        assert replaced[-1] == head
        first = "0002" if app == "tenants" else "0001"  # tenants 0001 stays (see its 0002)
        assert [name[:4] for name in replaced] == [
            f"{n:04d}" for n in range(int(first), int(head[:4]) + 1)
        ]
        # No replaced file is left; what follows the squashed one (new migrations) may stand.
        files = {name for label, name in loader.disk_migrations if label == app}
        before = {n for n in files if int(n[:4]) <= int(head[:4]) and n != squashed}
        assert before == ({"0001_initial"} if app == "tenants" else set())
        assert squashed in files


def test_a_database_at_the_old_heads_has_nothing_to_apply():
    _at_old_heads()
    executor = MigrationExecutor(connection)
    for (app, _head), squashed in OLD_HEADS.items():
        assert (app, squashed) in executor.loader.applied_migrations
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_a_database_short_of_an_old_head_is_refused_by_name():
    """Part of a replaced chain applied: Django alone would drop the squashed migration from
    its plan and leave monitors short of 0009 without a word; `migrate` says what is missing
    (the operator's cue to finish the old chain with the previous release)."""
    _at_old_heads()
    MigrationRecorder(connection).migration_qs.filter(
        app="monitors", name="0009_partition_results_by_day"
    ).delete()
    with pytest.raises(CommandError, match=r"missing: monitors\.0009_partition_results_by_day"):
        call_command("migrate", "--noinput", verbosity=0)
