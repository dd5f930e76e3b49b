"""DNS, PostgreSQL and Redis checkers against real peers on 127.0.0.1: a dnslib server started
here, and the machine's PostgreSQL (5432, trust auth) and Redis (6379, no password)."""

from __future__ import annotations

import asyncio
import socket

import psycopg
import pytest

from apps.monitors.checkers import dns as _dns  # noqa: F401  (registers "dns")
from apps.monitors.checkers import postgres as _postgres  # noqa: F401
from apps.monitors.checkers import redis as _redis  # noqa: F401
from apps.monitors.checkers.base import (
    REGISTRY,
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
    RunContext,
)
from tests.monitors.dnsserver import LocalDNSServer
from tests.support import free_port

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
NOLOGIN_ROLE = "hk_check_nologin"
SECRET = "s3cret-Pa55word"


def run(kind: str, config: dict, *, timeout: float = 5.0, **extra) -> CheckOutcome:
    extra.setdefault("allow_private", True)
    spec = CheckSpec(monitor_id="m-1", kind=kind, timeout=timeout, config=config, **extra)
    return asyncio.run(REGISTRY[kind](spec, RunContext()))


@pytest.fixture(scope="module")
def dns_server():
    server = LocalDNSServer().start()
    yield server
    server.stop()


@pytest.fixture
def zone(dns_server):
    yield dns_server
    dns_server.clear()


def lookup(zone: LocalDNSServer, name: str, record_type: str, expected=(), **extra):
    config = {
        "name": name,
        "record_type": record_type,
        "resolver": zone.host,
        "resolver_port": zone.port,
        "expected": list(expected),
    }
    return run("dns", config, **extra)


# --- DNS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_type", "records", "expected", "answers"),
    [
        ("A", ["192.0.2.10", "192.0.2.11"], ["192.0.2.11"], ["192.0.2.10", "192.0.2.11"]),
        ("AAAA", ["2001:db8::1"], ["2001:DB8:0:0::1"], ["2001:db8::1"]),
        ("CNAME", ["Target.Example.org."], ["target.example.org."], ["target.example.org"]),
        (
            "MX",
            ["10 mail.example.org.", "20 backup.example.org."],
            ["10 MAIL.example.org."],
            ["10 mail.example.org", "20 backup.example.org"],
        ),
        (
            "TXT",
            [("v=spf1 ", "include:example.org -all")],
            ["v=spf1 include:example.org -all"],
            ["v=spf1 include:example.org -all"],
        ),
    ],
)
def test_each_record_type_matching_its_expected_values_is_up(
    zone, record_type, records, expected, answers
):
    zone.set("svc.example.org", record_type, *records, ttl=120)
    result = lookup(zone, "svc.example.org", record_type, expected)
    assert result.outcome == Outcome.UP, result.error_message
    assert result.error_class == ErrorClass.NONE
    assert result.details == {"answers": answers, "ttl": 120}
    assert {"query_ms", "total_ms"} <= set(result.timings)
    assert result.response_time_ms == result.timings["total_ms"]


@pytest.mark.parametrize(
    ("record_type", "records", "expected", "actual"),
    [
        ("A", ["192.0.2.10"], ["192.0.2.99"], "192.0.2.10"),
        ("AAAA", ["2001:db8::1"], ["2001:db8::2"], "2001:db8::1"),
        ("CNAME", ["old.example.org."], ["new.example.org"], "old.example.org"),
        ("MX", ["20 mail.example.org."], ["10 mail.example.org"], "20 mail.example.org"),
        ("TXT", ["v=spf1 -all"], ["v=spf1 include:example.org -all"], "v=spf1 -all"),
    ],
)
def test_each_record_type_with_a_missing_expected_value_is_a_mismatch(
    zone, record_type, records, expected, actual
):
    zone.set("svc.example.org", record_type, *records)
    result = lookup(zone, "svc.example.org", record_type, expected)
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.MISMATCH
    assert result.details["answers"] == [actual]
    assert result.details["missing"] == [expected[0].lower().rstrip(".")]
    assert actual in result.error_message
    assert expected[0].lower() in result.error_message


def test_answers_are_normalised_lower_case_without_the_trailing_dot(zone):
    zone.set("svc.example.org", "MX", "10 Mail.Example.ORG.")
    result = lookup(zone, "SVC.example.org.", "MX")
    assert result.details["answers"] == ["10 mail.example.org"]


def test_any_answer_is_fine_when_nothing_is_expected(zone):
    zone.set("svc.example.org", "A", "192.0.2.1")
    result = lookup(zone, "svc.example.org", "A")
    assert result.outcome == Outcome.UP
    assert result.details["answers"] == ["192.0.2.1"]


def test_an_a_lookup_follows_a_cname_to_its_addresses(zone):
    zone.set("www.example.org", "CNAME", "origin.example.org.")
    zone.set("origin.example.org", "A", "192.0.2.7")
    result = lookup(zone, "www.example.org", "A", ["192.0.2.7"])
    assert result.outcome == Outcome.UP, result.error_message


def test_only_the_first_twenty_answers_are_kept(zone):
    zone.set("many.example.org", "A", *(f"192.0.2.{i}" for i in range(1, 31)))
    result = lookup(zone, "many.example.org", "A")
    assert len(result.details["answers"]) == 20


def test_an_unknown_name_is_down_with_no_such_name(zone):
    result = lookup(zone, "missing.example.org", "A")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.DNS
    assert "no such name" in result.error_message


def test_a_name_without_records_of_the_type_is_down_with_no_answer(zone):
    zone.set("svc.example.org", "A", "192.0.2.1")
    result = lookup(zone, "svc.example.org", "AAAA")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.DNS
    assert "no AAAA records" in result.error_message


def test_a_resolver_that_never_answers_times_out_within_the_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        config = {"name": "svc.example.org", "resolver": "127.0.0.1"}
        config["resolver_port"] = silent.getsockname()[1]
        result = run("dns", config, timeout=1.0)
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TIMEOUT
    assert result.error_message == "no DNS answer within 1s"  # the check's timeout, not a default


def test_a_loopback_resolver_is_refused_without_allow_private(zone):
    zone.set("svc.example.org", "A", "192.0.2.1")
    result = lookup(zone, "svc.example.org", "A", allow_private=False)
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.BLOCKED


def test_an_answer_slower_than_expected_is_degraded(zone):
    zone.set("svc.example.org", "A", "192.0.2.1")
    result = lookup(zone, "svc.example.org", "A", expected_response_time_ms=0.001)
    assert result.outcome == Outcome.DEGRADED
    assert result.error_class == ErrorClass.SLOW


def test_an_unsupported_record_type_is_reported_not_raised(zone):
    result = lookup(zone, "svc.example.org", "SRV")
    assert result.outcome == Outcome.DOWN
    assert "record_type" in result.error_message


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nologin_role():
    """Trust authentication accepts any password, so a role that may not log in is what
    makes the server refuse the credentials."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {NOLOGIN_ROLE}")
        conn.execute(f"CREATE ROLE {NOLOGIN_ROLE} NOLOGIN PASSWORD 'right'")
    yield NOLOGIN_ROLE
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {NOLOGIN_ROLE}")


def pg(dsn: str, **extra) -> CheckOutcome:
    query = extra.pop("query", None)
    return run("postgres", {"dsn": dsn, **({"query": query} if query else {})}, **extra)


def test_postgres_answering_select_1_is_up():
    result = pg(f"postgres://postgres:{SECRET}@127.0.0.1:5432/postgres")
    assert result.outcome == Outcome.UP, result.error_message
    assert {"connect_ms", "query_ms", "total_ms"} <= set(result.timings)
    assert result.details["server_version"] >= 100000
    assert result.details["rows"] == 1


def test_postgres_resolves_a_host_name_and_connects_to_the_checked_address():
    result = pg("postgresql://postgres@localhost/postgres", query="SELECT now()")
    assert result.outcome == Outcome.UP, result.error_message


def test_a_writing_query_fails_inside_the_read_only_transaction():
    result = pg(PG_ADMIN, query="CREATE TABLE hk_check_must_not_exist (a int)")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL
    assert "read-only transaction" in result.error_message


def test_more_than_one_statement_is_refused():
    result = pg(PG_ADMIN, query="SELECT 1; SELECT 2")
    assert result.outcome == Outcome.DOWN
    assert "multiple commands" in result.error_message


def test_an_unknown_database_is_down_with_the_servers_message():
    result = pg(f"postgres://postgres:{SECRET}@127.0.0.1:5432/hk_no_such_db")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL
    assert 'database "hk_no_such_db" does not exist' in result.error_message
    assert SECRET not in result.error_message


def test_refused_credentials_are_an_auth_failure_without_the_password(nologin_role):
    result = pg(f"postgres://{nologin_role}:{SECRET}@127.0.0.1:5432/postgres")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.AUTH
    assert "not permitted to log in" in result.error_message
    assert SECRET not in result.error_message


def test_an_unknown_role_is_an_auth_failure():
    result = pg("postgres://hk_no_such_role@127.0.0.1:5432/postgres")
    assert result.error_class == ErrorClass.AUTH


def test_a_closed_postgres_port_is_a_refused_connection():
    result = pg(f"postgres://postgres:{SECRET}@127.0.0.1:{free_port()}/postgres")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.CONNECTION
    assert "refused" in result.error_message.lower()
    assert SECRET not in result.error_message


def test_a_query_slower_than_the_timeout_times_out_on_time():
    # A check that let the 5 s query finish would be up: timing out is the 1 s limit at work.
    result = pg(PG_ADMIN, query="SELECT pg_sleep(5)", timeout=1.0)
    assert result.error_class == ErrorClass.TIMEOUT
    assert "within 1s" in result.error_message


def test_postgres_on_loopback_is_refused_without_allow_private():
    result = pg(f"postgres://postgres:{SECRET}@127.0.0.1:5432/postgres", allow_private=False)
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.BLOCKED
    assert SECRET not in result.error_message


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgres://postgres:{SECRET}@127.0.0.1:5432/postgres?passfile=/etc/passwd",
        f"postgres://postgres:{SECRET}@127.0.0.1:notaport/postgres",
        f"host=127.0.0.1 password={SECRET} 'unterminated",
    ],
)
def test_a_bad_dsn_is_reported_without_the_password(dsn):
    result = pg(dsn)
    assert result.outcome == Outcome.DOWN
    assert "invalid postgres monitor configuration" in result.error_message
    assert SECRET not in result.error_message


# --- Redis -------------------------------------------------------------------------------


def rd(url: str, **extra) -> CheckOutcome:
    return run("redis", {"url": url}, **extra)


def test_redis_answering_ping_is_up_with_its_version():
    result = rd("redis://127.0.0.1:6379/15")
    assert result.outcome == Outcome.UP, result.error_message
    assert result.details["version"].split(".")[0].isdigit()
    assert {"connect_ms", "query_ms", "total_ms"} <= set(result.timings)


def test_a_password_sent_to_a_redis_without_one_is_an_auth_failure():
    result = rd(f"redis://:{SECRET}@127.0.0.1:6379/15")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.AUTH
    # Redis 7's answer to AUTH <password> when the default user has none.
    assert "called without any password configured" in result.error_message
    assert SECRET not in result.error_message


def test_an_unknown_redis_user_is_an_auth_failure():
    result = rd(f"redis://hk_nobody:{SECRET}@127.0.0.1:6379/15")
    assert result.error_class == ErrorClass.AUTH
    assert "invalid username-password pair" in result.error_message
    assert SECRET not in result.error_message


def test_a_closed_redis_port_is_a_refused_connection():
    result = rd(f"redis://127.0.0.1:{free_port()}/15")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.CONNECTION


def test_a_database_index_redis_does_not_have_is_a_protocol_error():
    result = rd("redis://127.0.0.1:6379/4096")
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL


def test_redis_on_loopback_is_refused_without_allow_private():
    result = rd("redis://127.0.0.1:6379/15", allow_private=False)
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.BLOCKED


def test_a_url_that_is_not_redis_is_reported_not_raised():
    result = rd("http://127.0.0.1:6379/")
    assert result.outcome == Outcome.DOWN
    assert "invalid redis monitor configuration" in result.error_message
