#!/usr/bin/env python
"""A database migrated by the old migration chains upgrades to the squashed ones as a no-op.

Two databases are made: `upgraded` is migrated one migration at a time by the code of OLD_REV
(a copy of that commit from `git archive`, run with this checkout's Python), then by this
checkout; `fresh` is migrated one migration at a time by this checkout alone. The script
asserts that this checkout's `migrate` applies nothing to `upgraded`, that `showmigrations`
lists every migration applied and `migrate --check` passes, and that both databases have the
same tables, columns (in the same order), indexes and constraints (names included), the same
recorded migrations, content types, permissions and seeded plans and, on PostgreSQL, the same
partitions with the same bounds and the same index definitions on every table, partitions
included. Exit status 0
when all of that holds; the differences are printed otherwise.

usage: scripts/check_squash_upgrade.py [--old-rev REV] [--database-url URL] [--keep]

--database-url is a SQLite file URL or a PostgreSQL URL (default: a SQLite file in a temporary
folder); for PostgreSQL the two databases are `<name>_upgraded` and `<name>_fresh`, created and
dropped by the script. --old-rev defaults to the last commit before the squash.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# The last commit of the unsquashed chains (monitors 0009, plans 0004, incidents 0004, ...).
OLD_REV = "b4eaf4c"


def manage(cwd: Path, url: str, *args: str, check: bool = True, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": url, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if check and done.returncode != 0:
        raise SystemExit(f"{cwd}: manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def old_checkout(rev: str, into: Path) -> Path:
    """The tree of `rev` (tracked files only) in a folder of its own."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def databases(url: str | None, folder: Path) -> dict[str, str]:
    """URLs of two empty databases, `upgraded` and `fresh`."""
    if not url or url.startswith("sqlite"):
        base = Path(urlsplit(url).path) if url else folder / "db.sqlite3"
        urls = {}
        for kind in ("upgraded", "fresh"):
            path = base.with_name(f"{base.stem}_{kind}.sqlite3")
            path.unlink(missing_ok=True)
            urls[kind] = f"sqlite:///{path}"
        return urls
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    urls = {}
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        for kind in ("upgraded", "fresh"):
            db = f"{name}_{kind}"[:63]
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{db}"')
            urls[kind] = urlunsplit(parts._replace(path=f"/{db}"))
    return urls


def drop(urls: dict[str, str]) -> None:
    for url in urls.values():
        if url.startswith("postgres"):
            import psycopg

            parts = urlsplit(url)
            admin_url = urlunsplit(parts._replace(path="/postgres"))
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def fingerprint() -> dict[str, Any]:
    """This process's database, as tests/core/test_schema_build.py sees it, and on PostgreSQL
    what that introspection leaves out: partitions, their bounds, every index's definition."""
    import django

    django.setup()
    from django.db import connection

    from tests.core.test_schema_build import fingerprint as schema_and_rows

    found = schema_and_rows()
    with connection.cursor() as cursor:
        found["column order"] = {
            table: [c.name for c in connection.introspection.get_table_description(cursor, table)]
            for table in connection.introspection.table_names(cursor)
        }
    if connection.vendor == "postgresql":
        queries = {
            "partitions": (
                "SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid) "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent"
            ),
            "index definitions": (
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema()"
            ),
            "partitioned tables": (
                "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.relkind = 'p'"
            ),
        }
        with connection.cursor() as cursor:
            for what, sql in queries.items():
                cursor.execute(sql)
                found[what] = sorted([str(v) for v in row] for row in cursor.fetchall())
    return found


def read(url: str) -> dict[str, Any]:
    code = (
        "import json, runpy; "
        f"f = runpy.run_path({str(Path(__file__))!r})['fingerprint']; "
        "print(json.dumps(f()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": url,
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "healthorch.settings",
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"fingerprint of {url} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def differences(reference: Any, other: Any, where: str = "") -> list[str]:
    if isinstance(reference, dict) and isinstance(other, dict):
        lines = [f"only fresh: {where}{k}" for k in sorted(set(reference) - set(other))]
        lines += [f"only upgraded: {where}{k}" for k in sorted(set(other) - set(reference))]
        for key in sorted(set(reference) & set(other)):
            lines += differences(reference[key], other[key], f"{where}{key}/")
        return lines
    return [] if reference == other else [f"{where}: {reference} != {other}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    args = parser.parse_args()
    replay = {"HEALTHORCH_BUILD_EMPTY_DATABASE": "0"}

    with tempfile.TemporaryDirectory(prefix="squash-upgrade-") as tmp:
        old = old_checkout(args.old_rev, Path(tmp) / "old")
        urls = databases(args.database_url, Path(tmp))
        try:
            print(f"old chain ({args.old_rev}) migrating {urls['upgraded']}", flush=True)
            out = manage(old, urls["upgraded"], "migrate", "--noinput", **replay)
            assert "Applying monitors.0009_partition_results_by_day... OK" in out, out

            print("this checkout migrating the same database", flush=True)
            out = manage(ROOT, urls["upgraded"], "migrate", "--noinput")
            assert "No migrations to apply." in out, out
            listed = manage(ROOT, urls["upgraded"], "showmigrations")
            unapplied = [line for line in listed.splitlines() if "[ ]" in line]
            assert not unapplied, unapplied
            manage(ROOT, urls["upgraded"], "migrate", "--check")
            print("  no migration to apply; showmigrations: all applied; migrate --check: ok")

            print(f"this checkout migrating a fresh database {urls['fresh']}", flush=True)
            out = manage(ROOT, urls["fresh"], "migrate", "--noinput", **replay)
            assert "Applying monitors.0001_squashed_0009_monitors... OK" in out, out

            fresh, upgraded = read(urls["fresh"]), read(urls["upgraded"])
            found = differences(fresh, upgraded)
            for line in found:
                print(line)
            tables = len(fresh["schema"])
            partitions = len(fresh.get("partitions", []))
            print(f"{len(found)} differences ({tables} tables, {partitions} partitions compared)")
            return 1 if found else 0
        finally:
            if not args.keep:
                drop(urls)


if __name__ == "__main__":
    sys.exit(main())
