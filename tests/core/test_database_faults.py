"""A locked, full or unreachable database answers 503 in the one error shape, never a 500.

The errors here are real ones: SQLite's own "database is locked" (a second connection holding
BEGIN EXCLUSIVE) and "database or disk is full" (a database capped with max_page_count), and
psycopg's refused connection to a 127.0.0.1 port nobody listens on, each wrapped in Django's
exception class the way Django's database layer wraps it. The scenarios against running
processes are in tests/chaos/test_embedded_storage.py and tests/chaos/test_postgres_restart.py.
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import sys

import psycopg
import pytest
from django.db import connections, utils
from django.test import RequestFactory

from apps.core.dbfaults import (
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    STORAGE_ERROR,
    STORAGE_FULL,
    QuietDatabaseFaults,
    database_fault,
)
from apps.core.errors import exception_handler
from apps.core.middleware import DatabaseFaultMiddleware
from tests.support import free_port


def _as_django(exc: Exception) -> utils.OperationalError:
    """What Django's DatabaseErrorWrapper raises for a driver's OperationalError."""
    wrapped = utils.OperationalError(*exc.args)
    wrapped.__cause__ = exc
    return wrapped


def _locked(tmp_path) -> utils.OperationalError:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(path, timeout=0.1)
    try:
        writer.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        return _as_django(exc)
    finally:
        writer.close()
        holder.close()
    raise AssertionError("the write went through a held exclusive lock")


def _full(tmp_path) -> utils.OperationalError:
    db = sqlite3.connect(tmp_path / "full.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE t (x)")
    db.execute("PRAGMA max_page_count = 3")
    try:
        db.execute("INSERT INTO t VALUES (?)", ("x" * 20_000,))
    except sqlite3.OperationalError as exc:
        return _as_django(exc)
    finally:
        db.close()
    raise AssertionError("the capped database took a page too many")


def _refused() -> utils.OperationalError:
    try:
        psycopg.connect(host="127.0.0.1", port=free_port(), user="x", connect_timeout=2)
    except psycopg.OperationalError as exc:
        return _as_django(exc)
    raise AssertionError("a connection to a closed port succeeded")


@pytest.fixture(params=["locked", "full", "refused"])
def fault_and_error(request, tmp_path):
    if request.param == "locked":
        return DATABASE_BUSY, _locked(tmp_path)
    if request.param == "full":
        return STORAGE_FULL, _full(tmp_path)
    return DATABASE_UNAVAILABLE, _refused()


def test_real_driver_errors_are_recognised(fault_and_error):
    fault, error = fault_and_error
    assert database_fault(error) == fault


@pytest.mark.parametrize(
    "error",
    [
        utils.OperationalError("no such table: monitors_monitor"),
        utils.ProgrammingError("database is locked"),  # not an OperationalError: a bug
        utils.IntegrityError("UNIQUE constraint failed"),
        RuntimeError("database is locked"),
    ],
    ids=["other-operational", "programming", "integrity", "not-a-database-error"],
)
def test_other_errors_are_not_storage_faults(error):
    assert database_fault(error) is None


def test_a_disk_io_error_is_a_full_disk_only_when_the_disk_is_full(tmp_path):
    """SQLite's "disk I/O error" (its shared-memory file could not grow) names the full disk
    when the database's folder has no space left; otherwise it is a storage error."""
    error = utils.OperationalError("disk I/O error")
    # The classification reads the settings only (which disk holds the file); it never
    # connects, so the test database is left alone.
    saved = connections["default"].settings_dict
    connections["default"].settings_dict = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(tmp_path / "db.sqlite3"),
    }
    try:
        assert database_fault(error) == STORAGE_ERROR  # tmp_path's disk has room
        connections["default"].settings_dict["NAME"] = "/proc/self/x.sqlite3"  # 0 bytes free
        assert database_fault(error) == STORAGE_FULL
    finally:
        connections["default"].settings_dict = saved


def test_the_api_answers_503_in_the_one_shape_and_logs_one_line(fault_and_error, caplog):
    fault, error = fault_and_error
    request = RequestFactory().post("/api/v1/monitors/")
    with caplog.at_level(logging.WARNING, logger="apps.core.dbfaults"):
        response = exception_handler(error, {"request": request})
    assert response is not None
    assert response.status_code == 503
    assert response.data == {"error": fault.title, "detail": fault.detail, "code": fault.code}
    assert response["Retry-After"] == str(fault.retry_after)
    [line] = [r for r in caplog.records if r.name == "apps.core.dbfaults"]
    assert line.getMessage().startswith(f"{fault.title.lower()}: POST /api/v1/monitors/ ")
    assert line.exc_info is None  # no traceback per request during an outage


def test_an_unrecognised_database_error_stays_a_500():
    assert exception_handler(utils.OperationalError("no such column: x"), {}) is None


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/v1/dev/anything", "application/json"), ("/ping/abc", "text/plain; charset=utf-8")],
)
def test_views_outside_drf_answer_503_too(fault_and_error, path, content_type, caplog):
    fault, error = fault_and_error
    middleware = DatabaseFaultMiddleware(lambda request: None)
    with caplog.at_level(logging.WARNING, logger="apps.core.dbfaults"):
        response = middleware.process_exception(RequestFactory().get(path), error)
    assert response.status_code == 503
    assert response["Content-Type"] == content_type
    assert response["Retry-After"] == str(fault.retry_after)
    if content_type == "application/json":
        assert json.loads(response.content)["code"] == fault.code
    else:
        assert response.content.decode() == f"{fault.title.lower()}: try again later\n"
    assert len([r for r in caplog.records if r.name == "apps.core.dbfaults"]) == 1


def test_the_middleware_leaves_other_errors_to_django():
    middleware = DatabaseFaultMiddleware(lambda request: None)
    request = RequestFactory().get("/api/v1/monitors/")
    assert middleware.process_exception(request, ValueError("boom")) is None
    assert middleware.process_exception(request, utils.OperationalError("syntax")) is None


def _record(exc: Exception) -> logging.LogRecord:
    """A record as Celery's task tracer makes it: exc_info, and the formatted traceback again
    in `data` (extra={"data": {...}})."""
    try:
        raise exc
    except Exception:
        record = logging.LogRecord(
            "celery.app.trace",
            logging.ERROR,
            __file__,
            1,
            "Task raised: %r",
            (exc,),
            sys.exc_info(),
        )
    record.data = {"name": "t", "traceback": "Traceback (most recent call last): ..."}
    return record


def test_a_task_failing_on_a_database_fault_logs_its_line_without_the_traceback(
    fault_and_error,
):
    _, error = fault_and_error
    record = _record(error)
    assert QuietDatabaseFaults().filter(record)
    assert record.exc_info is None
    assert record.data == {"name": "t"}
    assert record.getMessage().startswith("Task raised: OperationalError(")


def test_any_other_error_keeps_its_traceback():
    record = _record(ValueError("a bug"))
    assert QuietDatabaseFaults().filter(record)
    assert record.exc_info is not None
    assert "traceback" in record.data


def test_a_full_disk_under_the_broker_logs_its_line_without_the_traceback():
    """The filesystem broker wraps ENOSPC in its ChannelError (beat logs it on every tick)."""
    from kombu.exceptions import ChannelError

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise ChannelError("Cannot add file 'x.msg' to directory") from exc
    except ChannelError as exc:
        record = _record(exc)
    assert QuietDatabaseFaults().filter(record)
    assert record.exc_info is None
