"""DNS record checker (kind "dns").

config:
    name            the name to look up
    record_type     A, AAAA, CNAME, MX or TXT (default A)
    resolver        IP address of the DNS server to ask; default the system resolver
    resolver_port   default 53
    expected        list of values that must all be in the answer; empty: any answer is fine

Answers and expected values are compared as normalised sets (lower-case, no trailing dot,
MX as "<preference> <exchange>", a TXT record's strings joined), so extra answers are fine
but a missing expected value is a mismatch.
"""

from __future__ import annotations

import ipaddress

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from apps.core.ssrf import is_blocked_address
from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import deadline_checker, down, ms_since

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT")
MAX_ANSWERS = 20


async def _check(spec: CheckSpec, started: float) -> CheckOutcome:
    config = spec.config
    record_type = str(config.get("record_type") or "A").upper()
    if record_type not in RECORD_TYPES:
        return _invalid(f"record_type must be one of {', '.join(RECORD_TYPES)}")
    try:
        name = dns.name.from_text(str(config.get("name") or ""))
    except dns.exception.DNSException as exc:
        return _invalid(f"name is not a valid DNS name: {exc}")
    if name == dns.name.root:
        return _invalid("name is required")

    resolver_or_failure = _make_resolver(spec)
    if isinstance(resolver_or_failure, CheckOutcome):
        return resolver_or_failure
    resolver = resolver_or_failure

    shown = name.to_text(omit_final_dot=True)
    try:
        answer = await resolver.resolve(name, record_type, search=False)
    except dns.resolver.NXDOMAIN:
        return down(ErrorClass.DNS, f"no such name: {shown}")
    except dns.resolver.NoAnswer:
        return down(ErrorClass.DNS, f"{shown} has no {record_type} records")
    except dns.exception.Timeout:
        return down(ErrorClass.TIMEOUT, f"no DNS answer within {spec.timeout:g}s")
    except dns.resolver.NoNameservers as exc:
        # Every server answered with an error (SERVFAIL, REFUSED) or could not be reached.
        return down(ErrorClass.DNS, f"the DNS server could not answer for {shown}: {exc}")
    except dns.exception.DNSException as exc:
        return down(ErrorClass.DNS, f"DNS lookup of {shown} failed: {exc}")
    except OSError as exc:
        return down(ErrorClass.CONNECTION, f"cannot reach the DNS server: {exc}")
    query_ms = ms_since(started)

    answers = sorted({_normalise_answer(record_type, rdata) for rdata in answer})
    details = {"answers": answers[:MAX_ANSWERS], "ttl": answer.rrset.ttl if answer.rrset else None}
    timings = {"query_ms": query_ms}
    expected = {_normalise_expected(record_type, v) for v in config.get("expected") or []}
    missing = sorted(expected - set(answers))
    if missing:
        details.update(expected=sorted(expected), missing=missing)
        return CheckOutcome(
            outcome=Outcome.DOWN,
            error_class=ErrorClass.MISMATCH,
            error_message=(
                f"{record_type} {shown}: expected {', '.join(sorted(expected))}; "
                f"got {', '.join(answers[:MAX_ANSWERS]) or 'nothing'}"
            ),
            timings=timings,
            details=details,
        )
    return CheckOutcome(outcome=Outcome.UP, timings=timings, details=details)


check = deadline_checker("dns", _check, timeout_message="no DNS answer within {timeout:g}s")


def _make_resolver(spec: CheckSpec) -> dns.asyncresolver.Resolver | CheckOutcome:
    address = spec.config.get("resolver")
    lifetime = max(spec.timeout, 0.1)
    if not address:
        # The operator's own resolver is infrastructure, not a user-chosen target: the SSRF
        # rules apply only to a resolver the monitor names.
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration as exc:
            return CheckOutcome(
                outcome=Outcome.INCONCLUSIVE,
                error_class=ErrorClass.DNS,
                error_message=f"the checker has no usable system resolver: {exc}",
            )
        resolver.lifetime = lifetime
        return resolver
    try:
        ip = ipaddress.ip_address(str(address).strip("[]"))
        port = int(spec.config.get("resolver_port") or 53)
    except ValueError:
        return _invalid("resolver must be an IP address and resolver_port a number")
    if not 0 < port < 65536:
        return _invalid("resolver_port must be between 1 and 65535")
    if not spec.allow_private and is_blocked_address(ip):
        return down(ErrorClass.BLOCKED, f"resolver {ip} is a private or reserved address")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(str(ip), port)]
    resolver.lifetime = lifetime
    # Without a per-attempt limit below the lifetime a lost UDP packet would use the whole
    # budget; half of it leaves room for one retry.
    resolver.timeout = lifetime / 2
    return resolver


def _normalise_answer(record_type: str, rdata) -> str:
    if record_type == "MX":
        return f"{rdata.preference} {_normalise_name(rdata.exchange.to_text())}"
    if record_type == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace").lower()
    if record_type == "CNAME":
        return _normalise_name(rdata.target.to_text())
    return _normalise_expected(record_type, rdata.to_text())


def _normalise_expected(record_type: str, value) -> str:
    text = str(value).strip()
    if record_type in ("A", "AAAA"):
        try:
            # One spelling per address: 2001:DB8:0::1 and 2001:db8::1 are the same answer.
            return ipaddress.ip_address(text).compressed
        except ValueError:
            return text.lower()
    if record_type == "MX":
        preference, _, exchange = text.partition(" ")
        return f"{preference} {_normalise_name(exchange)}"
    if record_type == "TXT":
        return text.lower()
    return _normalise_name(text)


def _normalise_name(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _invalid(message: str) -> CheckOutcome:
    return down(ErrorClass.PROTOCOL, f"invalid dns monitor configuration: {message}")
