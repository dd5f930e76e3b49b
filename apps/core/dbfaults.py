"""A database that is locked, full or unreachable: the storage's state, not a bug.

SQLite answers "database is locked" when another process holds its write lock longer than
the busy timeout, and "database or disk is full" when a page cannot be written (or "disk I/O
error" when its shared-memory file cannot grow, which on a full disk is `storage_full` too);
PostgreSQL's driver says the connection was refused or dropped while the server restarts.
None of these is the request's fault or the code's, and each passes by itself, so the product
answers 503 with a `Retry-After` (the API's exception handler, `DatabaseFaultMiddleware` for
other views) and logs one line without a traceback (`QuietDatabaseFaults` for Celery tasks and
beat).

Only Django's database layer is imported here: the logging configuration loads this module
before the apps are ready.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseFault:
    """A database error that is the storage's state, not the request's fault: it passes when
    the lock is released, the space returns or the server is back, so callers answer 503 and
    may try again."""

    title: str
    code: str
    detail: str
    retry_after: int

    @property
    def plain_text(self) -> str:
        """The answer outside /api/ (the heartbeat ping): `database busy: try again later`."""
        return f"{self.title.lower()}: try again later"


DATABASE_BUSY = DatabaseFault(
    "Database busy",
    "database_busy",
    "The database is locked by another writer; nothing was saved. Try again shortly.",
    5,
)
STORAGE_FULL = DatabaseFault(
    "Storage full",
    "storage_full",
    "The database's disk is full; nothing was saved. Try again once space is freed.",
    30,
)
STORAGE_ERROR = DatabaseFault(
    "Storage error",
    "storage_error",
    "The database's storage refused a read or write; nothing was saved. Try again later.",
    30,
)
DATABASE_UNAVAILABLE = DatabaseFault(
    "Database unavailable",
    "database_unavailable",
    "The database cannot be reached; nothing was saved. Try again shortly.",
    5,
)

# Free space below which a SQLite "disk I/O error" is taken for a full disk.
FULL_BELOW_BYTES = 1 << 20

# Lower-case fragments of the driver's message (SQLite's, psycopg's and PostgreSQL's own).
_FAULTS: tuple[tuple[DatabaseFault, tuple[str, ...]], ...] = (
    (
        DATABASE_BUSY,
        ("database is locked", "database table is locked", "database schema is locked"),
    ),
    (
        STORAGE_FULL,
        ("database or disk is full", "no space left on device", "disk quota exceeded"),
    ),
    (
        DATABASE_UNAVAILABLE,
        (
            "connection refused",
            "could not connect",
            "connection is bad",
            "connection already closed",
            "connection has been closed",
            "server closed the connection",
            "terminating connection",
            "the database system is starting up",
            "the database system is shutting down",
            "the database system is in recovery mode",
            "consuming input failed",
            "connection timeout expired",
            "ssl syscall error",
            "unable to open database file",
        ),
    ),
)


def database_fault(exc: BaseException) -> DatabaseFault | None:
    """What a database error says about the storage, or None if it is something else (a bug,
    bad SQL: those stay 500s). Only Django's OperationalError and InterfaceError qualify."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    message = str(exc).lower()
    if "disk i/o error" in message:
        # What SQLite says when its shared-memory file cannot grow on a full disk (a new
        # connection cannot even open); also what it says for a failing disk.
        return STORAGE_FULL if _sqlite_disk_full() else STORAGE_ERROR
    for fault, fragments in _FAULTS:
        if any(fragment in message for fragment in fragments):
            return fault
    return None


def _sqlite_disk_full() -> bool:
    """Is the disk that holds the (SQLite) database all but full?"""
    settings_dict = connections[DEFAULT_DB_ALIAS].settings_dict
    if not settings_dict.get("ENGINE", "").endswith("sqlite3"):
        return False
    try:
        disk = os.statvfs(Path(str(settings_dict["NAME"])).parent)
    except OSError:
        return False
    return disk.f_bavail * disk.f_frsize < FULL_BELOW_BYTES


def log_database_fault(fault: DatabaseFault, exc: BaseException, where: str) -> None:
    """One line, no traceback: the fault is the storage's state, and a traceback per request
    during an outage would bury everything else in the log."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    logger.warning(
        "%s: %s answered 503 (%s)",
        fault.title.lower(),
        where,
        first_line[:200],
        extra={"code": fault.code},
    )


def database_fault_body(fault: DatabaseFault) -> dict[str, str]:
    return {"error": fault.title, "detail": fault.detail, "code": fault.code}


def _disk_full_in(exc: BaseException) -> bool:
    """An OSError "No space left on device" anywhere in the chain (the filesystem broker wraps
    it in its own ChannelError)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


class QuietDatabaseFaults(logging.Filter):
    """Drops the traceback from a record whose exception is a database fault or a full disk.

    A task that fails on a locked or unreachable database (Celery logs "Task ... raised
    unexpected: OperationalError(...)"), a beat tick that cannot read its schedule or cannot
    write a message to the embedded broker's full disk would otherwise write a 30-line
    traceback every few seconds for as long as the outage lasts. The line itself, naming the
    task and the error, stays; any other error keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (database_fault(exc) is not None or _disk_full_in(exc)):
            record.exc_info = None
            record.exc_text = None
            # Celery also carries the formatted traceback in the record's `data`.
            data = getattr(record, "data", None)
            if isinstance(data, dict) and "traceback" in data:
                record.data = {k: v for k, v in data.items() if k != "traceback"}
        return True
