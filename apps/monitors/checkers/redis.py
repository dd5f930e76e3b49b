"""Redis checker (kind "redis").

config:
    url     redis://[[user]:password@]host[:port][/db] or rediss:// for TLS

PING must answer PONG; the server version comes from INFO server when the user may run it.
The host is resolved through the SSRF guard and the connection goes to the checked address;
for rediss the certificate is still verified against the configured name.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from urllib.parse import unquote, urlsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import addresses_or_down, deadline_checker, down, ms_since

MAX_ADDRESSES = 4


class _PinnedSSLConnection(SSLConnection):
    """TLS to the checked IP, with SNI and certificate verification for the configured name.

    redis-py sends SNI for whatever it connects to, which here is an IP address; overriding
    its (private) connection arguments is the one place the name can be handed to asyncio.
    """

    def __init__(self, *, server_hostname: str, **kwargs):
        self.server_hostname = server_hostname
        super().__init__(**kwargs)

    def _connection_arguments(self):
        return {**super()._connection_arguments(), "server_hostname": self.server_hostname}


def _scrub(spec: CheckSpec, message: str) -> str:
    password = None
    with contextlib.suppress(ValueError):
        password = unquote(urlsplit(str(spec.config.get("url") or "")).password or "") or None
    return message.replace(password, "***") if password else message


async def _check(spec: CheckSpec, started: float) -> CheckOutcome:
    try:
        url = urlsplit(str(spec.config.get("url") or ""))
        port = url.port or 6379
        db = int(url.path.strip("/") or 0)
    except ValueError:
        return _invalid("url needs a numeric port and database")
    if url.scheme not in ("redis", "rediss") or not url.hostname:
        return _invalid("url must look like redis://host:port/db or rediss://host:port/db")
    host = url.hostname

    addresses = await addresses_or_down(host, port, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    timings = {"dns_ms": ms_since(started)}

    options = {
        "port": port,
        "db": db,
        "username": unquote(url.username) if url.username else None,
        "password": unquote(url.password) if url.password else None,
        # A monitor reports what one attempt saw; retrying would hide flapping and stretch
        # the check past its timeout.
        "retry": Retry(NoBackoff(), 0),
        # RESP2 authenticates with AUTH, which every server version understands, and a
        # password sent to a server that has none is refused instead of silently accepted
        # (HELLO 3 AUTH default <anything> succeeds there).
        "protocol": 2,
        "connection_class": Connection,
    }
    if url.scheme == "rediss":
        options.update(connection_class=_PinnedSSLConnection, server_hostname=host)
    # Like a client resolving the name itself: the next address only when this one could
    # not be reached at all.
    for address in addresses[:MAX_ADDRESSES]:
        remaining = max(0.1, spec.timeout - (time.perf_counter() - started))
        options.update(host=address, socket_connect_timeout=remaining, socket_timeout=remaining)
        result = await _probe(options, dict(timings))
        if result.error_class != ErrorClass.CONNECTION:
            break
    return result


check = deadline_checker("redis", _check, scrub=_scrub)


async def _probe(options: dict, timings: dict) -> CheckOutcome:
    pool = ConnectionPool(**options)
    client = Redis(connection_pool=pool, single_connection_client=True)
    try:
        phase = time.perf_counter()
        await client.initialize()  # connect, AUTH and SELECT
        timings["connect_ms"] = ms_since(phase)
        phase = time.perf_counter()
        if await client.ping() is not True:
            return down(
                ErrorClass.PROTOCOL, "PING was not answered with PONG", timings=dict(timings)
            )
        details = {}
        # A restricted ACL user may PING without seeing INFO: still up, just no version.
        with contextlib.suppress(NoPermissionError, ResponseError):
            details["version"] = (await client.info("server")).get("redis_version")
        timings["query_ms"] = ms_since(phase)
    except AuthenticationError as exc:
        return down(ErrorClass.AUTH, f"authentication refused: {exc}", timings=dict(timings))
    except RedisTimeoutError as exc:
        return down(ErrorClass.TIMEOUT, str(exc) or "timed out", timings=dict(timings))
    except RedisConnectionError as exc:
        cause = exc.__cause__ or exc.__context__
        error_class = ErrorClass.TLS if isinstance(cause, ssl.SSLError) else ErrorClass.CONNECTION
        return down(error_class, str(exc), timings=dict(timings))
    except ResponseError as exc:
        return down(ErrorClass.PROTOCOL, f"server error: {exc}", timings=dict(timings))
    except RedisError as exc:
        return down(ErrorClass.PROTOCOL, str(exc), timings=dict(timings))
    except OSError as exc:
        return down(ErrorClass.CONNECTION, str(exc), timings=dict(timings))
    finally:
        await client.aclose()
        await pool.disconnect()
    return CheckOutcome(outcome=Outcome.UP, timings=timings, details=details)


def _invalid(message: str) -> CheckOutcome:
    return down(ErrorClass.PROTOCOL, f"invalid redis monitor configuration: {message}")
