"""PostgreSQL checker (kind "postgres").

config:
    dsn     postgres://user:password@host:port/db (or key=value form); the password arrives
            decrypted and must never reach a message
    query   optional single read-only statement, default SELECT 1

The host is resolved through the SSRF guard and libpq is pinned to the checked address with
`hostaddr` (the name stays in `host` for TLS verification and SNI), so a name rebinding to a
private address between the check and the connect cannot redirect the connection. The query
runs with the extended protocol (one statement only) inside a READ ONLY transaction that is
rolled back.
"""

from __future__ import annotations

import math
import re
import time
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import addresses_or_down, deadline_checker, down, ms_since

DEFAULT_QUERY = "SELECT 1"
MAX_ADDRESSES = 4
# Parameters that read files on the checker (passfile, sslkey, service) or re-route the
# connection (hostaddr) would let a tenant use the checker's own machine: only these pass.
ALLOWED_PARAMS = {"host", "port", "dbname", "user", "password", "sslmode", "application_name"}
_AUTH_HINTS = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "not permitted to log in",
    "no password supplied",
    "password is required",
    'role "',
)


async def _check(spec: CheckSpec, started: float) -> CheckOutcome:
    try:
        params = conninfo_to_dict(str(spec.config.get("dsn") or ""))
    except psycopg.ProgrammingError:
        # libpq's parse error quotes the string, password included: say nothing about it.
        return _invalid("dsn is not a valid PostgreSQL connection string")
    unknown = sorted(set(params) - ALLOWED_PARAMS)
    if unknown:
        return _invalid(f"dsn parameter not allowed: {', '.join(unknown)}")
    host = str(params.get("host") or "")
    if not host or "," in host or host.startswith("/"):
        return _invalid("dsn needs exactly one TCP host")
    try:
        port = int(params.get("port") or 5432)
    except ValueError:
        return _invalid("dsn port must be a number")
    query = str(spec.config.get("query") or DEFAULT_QUERY)

    addresses = await addresses_or_down(host, port, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    timings = {"dns_ms": ms_since(started)}

    remaining = _remaining(spec, started)
    # libpq pairs the lists element by element and tries each address in turn, as it would
    # for a name it resolved itself.
    addresses = addresses[:MAX_ADDRESSES]
    params.update(host=",".join([host] * len(addresses)), hostaddr=",".join(addresses), port=port)
    params.setdefault("application_name", "healthorch-check")
    phase = time.perf_counter()
    try:
        conn = await psycopg.AsyncConnection.connect(
            **params, autocommit=False, connect_timeout=max(2, math.ceil(remaining))
        )
    except psycopg.Error as exc:
        result = _classify_connect_error(exc)
        result.timings = timings
        return result
    timings["connect_ms"] = ms_since(phase)

    phase = time.perf_counter()
    try:
        await conn.set_read_only(True)
        # The server stops the query itself a little before our deadline, so a slow query
        # does not outlive the check on the server.
        budget_ms = max(100, int(_remaining(spec, started) * 1000) - 100)
        await conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{budget_ms}ms"])
        # A cursor in binary mode always uses the extended protocol, in which the server
        # refuses more than one statement.
        cursor = conn.cursor(binary=True)
        await cursor.execute(query)
        rows = cursor.rowcount
        server_version = conn.info.server_version
        await conn.rollback()
    except psycopg.errors.QueryCanceled:
        message = f"query did not finish within {spec.timeout:g}s (stopped by the server)"
        return down(ErrorClass.TIMEOUT, message, timings=dict(timings))
    except psycopg.Error as exc:
        return down(ErrorClass.PROTOCOL, f"query failed: {_message(exc)}", timings=dict(timings))
    finally:
        await conn.close()
    timings["query_ms"] = ms_since(phase)
    details = {"server_version": server_version, "rows": rows}
    return CheckOutcome(outcome=Outcome.UP, timings=timings, details=details)


def _classify_connect_error(exc: psycopg.Error) -> CheckOutcome:
    # A failed connect carries no SQLSTATE in psycopg: libpq's text is all there is.
    message = _message(exc)
    lowered = message.lower()
    if "timeout expired" in lowered:
        return down(ErrorClass.TIMEOUT, message)
    if "database" in lowered and "does not exist" in lowered:
        return down(ErrorClass.PROTOCOL, message)
    # Before the TLS test: a pg_hba refusal names the encryption state ("SSL off").
    if any(hint in lowered for hint in _AUTH_HINTS):
        return down(ErrorClass.AUTH, message)
    if "ssl" in lowered or "certificate" in lowered:
        return down(ErrorClass.TLS, message)
    if "fatal:" in lowered or "error:" in lowered:
        return down(ErrorClass.PROTOCOL, message)
    return down(ErrorClass.CONNECTION, message)


def _message(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()


def _scrub(spec: CheckSpec, message: str) -> str:
    try:
        password = conninfo_to_dict(str(spec.config.get("dsn") or "")).get("password")
    except psycopg.ProgrammingError:
        return message
    if not password or not message:
        return message
    for form in {password, quote(password, safe="")}:
        message = message.replace(form, "***")
    return message


check = deadline_checker("postgres", _check, scrub=_scrub)


def _remaining(spec: CheckSpec, started: float) -> float:
    return max(0.1, spec.timeout - (time.perf_counter() - started))


def _invalid(message: str) -> CheckOutcome:
    return down(ErrorClass.PROTOCOL, f"invalid postgres monitor configuration: {message}")
