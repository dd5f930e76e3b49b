"""The outbound guard against SSRF: a hosted checker or sender must not become a proxy into its
own network (monitor checks, webhooks, notifications and healing actions all ask here).

Targets resolving to loopback, private, link-local (169.254.169.254, the cloud metadata
service), multicast, unspecified or reserved addresses are refused, for IPv4 and IPv6
(including IPv4-mapped IPv6). The check runs when a monitor or channel is saved (literal addresses and loopback names) and
again on the addresses DNS returns at the moment of use, so a name that later rebinds to
10.0.0.1 is still refused. `HEALTHORCH_ALLOW_PRIVATE_TARGETS` turns the refusal off (embedded
default and tests, whose targets live on 127.0.0.1).

These are the rules; `apps.core.outbound` applies them to every request that leaves, and
connects to exactly the address that passed them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(ValueError):
    """The target is, or resolves to, an address the checker must not reach."""


class ResolutionFailed(OSError):
    """The name did not resolve."""


# Ranges beyond what ipaddress flags: carrier-grade NAT and the IPv6 NAT64 prefix, which can
# map back onto private IPv4 space.
_EXTRA_BLOCKED = [ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("64:ff9b::/96")]


def is_blocked_address(address: str | IPAddress) -> bool:
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
        or any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version)
    )


def check_literal(host: str, *, allow_private: bool) -> None:
    """Refuse an IP literal in a blocked range (save-time check; names are checked on use)."""
    if allow_private:
        return
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host.strip(".").lower() in {
            "localhost",
            "localhost.localdomain",
        } or host.lower().endswith(".localhost"):
            raise BlockedTarget(f"{host} is a loopback name") from None
        return
    if is_blocked_address(ip):
        raise BlockedTarget(f"{host} is a private or reserved address")


def resolve_blocking(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve `host` and return its addresses, refusing any blocked one."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ResolutionFailed(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    vet_addresses(host, addresses, allow_private=allow_private)
    return addresses


def vet_addresses(host: str, addresses: list[str], *, allow_private: bool) -> None:
    """Refuse the whole answer for `host` if any address in it is blocked: a name that also
    points inside must not be used at all, whichever address a client would pick."""
    if allow_private:
        return
    blocked = [a for a in addresses if is_blocked_address(a)]
    if blocked:
        raise BlockedTarget(f"{host} resolves to a private or reserved address ({blocked[0]})")


async def resolve_target(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Async resolution with the same rules, for checkers (check-time rebinding guard)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, lambda: resolve_blocking(host, port, allow_private=allow_private)
    )
