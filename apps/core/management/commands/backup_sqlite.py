"""`manage.py backup_sqlite FILE`: a consistent copy of the embedded SQLite database, taken
while the product runs.

Copying the database file (and its `-wal` beside it) while processes write gives a torn copy.
SQLite's online backup (the same as the `sqlite3` shell's `.backup`, here through Python's
`sqlite3`, so no extra program is needed) reads one consistent snapshot; in WAL mode the
writers are not blocked meanwhile. The copy is written beside FILE, checked with
`PRAGMA integrity_check`, and only then renamed to FILE, so FILE is never half-written.
PostgreSQL is backed up with pg_dump instead (docs/operations/backup.md).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Copy the embedded SQLite database to FILE while it runs (SQLite's online backup)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="Where to write the copy (must not exist yet).")

    def handle(self, *args: Any, **options: Any) -> None:
        database = settings.DATABASES["default"]
        if not database["ENGINE"].endswith("sqlite3"):
            raise CommandError(
                "The database is not SQLite: back it up with pg_dump (docs/operations/backup.md)."
            )
        target = Path(options["file"]).resolve()
        if target.exists():
            raise CommandError(f"{target} exists: a backup is written to a new file.")
        partial = target.with_name(f".{target.name}.part")
        partial.unlink(missing_ok=True)
        started = time.monotonic()
        source = sqlite3.connect(database["NAME"], timeout=20)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
            tables = copy.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table'"
            ).fetchone()[0]
        finally:
            copy.close()
            source.close()
        if verdict != "ok":
            partial.unlink(missing_ok=True)
            raise CommandError(f"The copy failed SQLite's integrity check: {verdict}")
        os.replace(partial, target)
        self.stdout.write(
            f"Backed up {database['NAME']} to {target}: {tables} tables, "
            f"{target.stat().st_size} bytes in {time.monotonic() - started:.1f}s"
        )
