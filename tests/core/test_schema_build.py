"""A database built in one step is the database every migration makes, and migrates further.

`manage.py migrate` builds an empty database from the migrations' final state (the test
database of this run was made that way too). Here two new databases are made by real `migrate`
processes, one built in one step and one replaying every migration
(`HEALTHORCH_BUILD_EMPTY_DATABASE=0`); they must have the same tables, columns, indexes and
constraints (names included), the same recorded migrations, content types and permissions, and
the same seeded plans. The built one then takes the monitors migration (squashed, partitioning
step included) backwards and forwards again, and still matches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def _manage(url: str, *args: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> Iterator[dict[str, str]]:
    """URLs of two new databases: `built` in one step, `migrated` one migration at a time."""
    settings = dict(connection.settings_dict)
    if connection.vendor == "sqlite":
        folder = tmp_path_factory.mktemp("schema")
        urls = {kind: f"sqlite:///{folder / kind}.sqlite3" for kind in ("built", "migrated")}
        yield _made(urls)
        return
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    names = {kind: f"{settings['NAME']}_{kind}"[:63] for kind in ("built", "migrated")}
    with psycopg.connect(
        host=host, port=port, user=settings["USER"], dbname="postgres", autocommit=True
    ) as admin:
        for name in names.values():
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _made(
                {k: f"postgres://{settings['USER']}@{host}:{port}/{n}" for k, n in names.items()}
            )
        finally:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _made(urls: dict[str, str]) -> dict[str, str]:
    out = _manage(urls["built"], "migrate", "--noinput")
    assert "building the schema in one step" in out, out
    out = _manage(urls["migrated"], "migrate", "--noinput", HEALTHORCH_BUILD_EMPTY_DATABASE="0")
    assert "building" not in out, out
    assert "Applying plans.0001_squashed_0004_plans... OK" in out, out
    return urls


def _fingerprint_of(url: str) -> dict[str, Any]:
    """`fingerprint()` of the database at `url`, read by a process of its own."""
    code = "import json; from tests.core.test_schema_build import fingerprint; "
    code += "print(json.dumps(fingerprint()))"
    return json.loads(_manage(url, "shell", "-c", code).splitlines()[-1])


def fingerprint() -> dict[str, Any]:
    """The default database's schema and rows, in a form JSON carries unchanged."""
    return json.loads(json.dumps({"schema": _schema(connection), "rows": _rows(connection)}))


def _schema(conn: Any) -> dict[str, Any]:
    """Every table's columns and constraints (indexes included), as introspection sees them."""
    found = {}
    with conn.cursor() as cursor:
        for table in conn.introspection.table_names(cursor):
            columns = sorted(
                (c.name, str(c.type_code), c.null_ok, str(c.default))
                for c in conn.introspection.get_table_description(cursor, table)
            )
            constraints = {
                name: {key: str(value) for key, value in sorted(info.items())}
                for name, info in conn.introspection.get_constraints(cursor, table).items()
            }
            found[table] = {"columns": columns, "constraints": constraints}
    return found


def _rows(conn: Any) -> dict[str, Any]:
    """What migrations and their signals put in a new database, without ids and clocks."""
    queries = {
        "migrations": "SELECT app, name FROM django_migrations",
        "content types": "SELECT app_label, model FROM django_content_type",
        "permissions": (
            "SELECT t.app_label, t.model, p.codename, p.name FROM auth_permission p "
            "JOIN django_content_type t ON t.id = p.content_type_id"
        ),
        "plans": "SELECT * FROM plans_plan",
    }
    found = {}
    with conn.cursor() as cursor:
        for what, sql in queries.items():
            cursor.execute(sql)
            names = [c[0] for c in cursor.description]
            keep = [i for i, n in enumerate(names) if n not in {"id", "created_at", "updated_at"}]
            found[what] = sorted(tuple(str(row[i]) for i in keep) for row in cursor.fetchall())
    return found


def _differences(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    lines = [f"only migrated: {t}" for t in sorted(set(reference) - set(other))]
    lines += [f"only built: {t}" for t in sorted(set(other) - set(reference))]
    lines += [
        f"{t}: {reference[t]} != {other[t]}"
        for t in sorted(set(reference) & set(other))
        if reference[t] != other[t]
    ]
    return lines


def test_a_built_database_has_the_schema_every_migration_makes(databases):
    reference = _fingerprint_of(databases["migrated"])["schema"]
    assert len(reference) > 100  # the whole product, dj-stripe included
    assert _differences(reference, _fingerprint_of(databases["built"])["schema"]) == []


def test_a_built_database_holds_what_migrations_record_and_seed(databases):
    reference = _fingerprint_of(databases["migrated"])["rows"]
    assert len(reference["plans"]) == 4  # free, pro, business, enterprise
    assert _differences(reference, _fingerprint_of(databases["built"])["rows"]) == []


def test_later_migrations_apply_on_a_built_database(databases):
    built = databases["built"]
    out = _manage(built, "migrate", "monitors", "zero", "--noinput")
    assert "Unapplying monitors.0001_squashed_0009_monitors... OK" in out, out
    out = _manage(built, "migrate", "--noinput")
    assert "Applying monitors.0001_squashed_0009_monitors... OK" in out, out
    reference = _fingerprint_of(databases["migrated"])["schema"]
    assert _differences(reference, _fingerprint_of(built)["schema"]) == []


def test_a_database_with_tables_is_migrated_not_rebuilt(databases):
    out = _manage(databases["built"], "migrate", "--noinput")
    assert "building" not in out, out
    assert "No migrations to apply." in out, out
