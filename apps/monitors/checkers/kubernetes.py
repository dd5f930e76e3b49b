"""Kubernetes checker: is the API server ready, or does a workload have the replicas it wants?

config: server (the API server's https URL), ca_pem (the cluster's CA as PEM text; None: the
system CAs), target ("readyz", "deployment" or "statefulset"), namespace ("default"), name
(the workload's name). The bearer token is the monitor's secret, stored encrypted.

readyz: up on 200; down with the failing checks the server lists ("[-]etcd failed").
deployment / statefulset: up when the available replicas reach the desired number (a workload
scaled to zero is up); degraded with `replicas` when some but not all are available; down when
none are. 401/403 are down with `auth`; a missing workload is down with `status`.

The request goes through the check engine's guarded session (the SSRF guard pins the API
server's address) with redirects refused; at most 1 MiB of the answer is read.
timings: ttfb_ms (until the answer's headers), total_ms.
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from apps.core.outbound import Guard
from apps.core.ssrf import BlockedTarget
from apps.monitors.checkers.aiohttp_client import client_error, make_session
from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import down, ms, timed_checker, tls_context, up_or_slow

TARGETS = ("readyz", "deployment", "statefulset")
BODY_LIMIT = 1024 * 1024
_RESOURCES = {"deployment": "deployments", "statefulset": "statefulsets"}


def _path(config: dict[str, Any]) -> str:
    target = str(config.get("target") or "readyz")
    if target == "readyz":
        return "/readyz?verbose"
    if target not in _RESOURCES:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}")
    namespace = quote(str(config.get("namespace") or "default"), safe="")
    name = quote(str(config.get("name") or ""), safe="")
    if not name:
        raise ValueError(f"a {target} target needs a name")
    return f"/apis/apps/v1/namespaces/{namespace}/{_RESOURCES[target]}/{name}"


def _readyz(status: int, body: str) -> CheckOutcome:
    if status == 200:
        return CheckOutcome(outcome=Outcome.UP, status_code=status)
    failing = [line[3:].strip() for line in body.splitlines() if line.startswith("[-]")]
    said = "; ".join(failing[:5]) or body.strip()[:200] or "no reason given"
    return down(ErrorClass.STATUS, f"API server not ready ({status}): {said}", status_code=status)


def replicas_judged(config: dict[str, Any], status: int, body: str) -> CheckOutcome:
    """The verdict on a workload from the API server's answer (`status`, JSON `body`)."""
    kind = str(config.get("target"))
    where = f"{config.get('namespace') or 'default'}/{config.get('name')}"
    if status == 404:
        return down(ErrorClass.STATUS, f"{kind} {where} not found", status_code=status)
    if status != 200:
        return down(ErrorClass.STATUS, f"the API server answered {status}", status_code=status)
    try:
        workload = json.loads(body)
        desired = int(workload.get("spec", {}).get("replicas", 1))
        state = workload.get("status", {})
        available = int(state.get("availableReplicas", state.get("readyReplicas", 0)) or 0)
    except (ValueError, TypeError, AttributeError):
        return down(ErrorClass.PROTOCOL, f"not a {kind} object", status_code=status)
    details = {
        "desired": desired,
        "available": available,
        "ready": int(state.get("readyReplicas", 0) or 0),
        "updated": int(state.get("updatedReplicas", 0) or 0),
    }
    outcome = CheckOutcome(outcome=Outcome.UP, status_code=status, details=details)
    if available >= desired:
        return outcome
    outcome.outcome = Outcome.DEGRADED if available else Outcome.DOWN
    outcome.error_class = ErrorClass.REPLICAS
    outcome.error_message = f"{available} of {desired} replicas of {kind} {where} available"
    return outcome


async def _fetch(
    spec: CheckSpec, url: str, context: ssl.SSLContext, timings: dict[str, float], started: float
) -> tuple[int, str]:
    token = str(spec.config.get("token") or "")
    # No redirect is followed, so this is the only hop; a name is vetted when resolved.
    Guard(allow_private=spec.allow_private).check_hop(urlsplit(url).hostname or "")
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        make_session(allow_private=spec.allow_private, limit=1) as session,
        session.get(url, headers=headers, ssl=context, allow_redirects=False) as response,
    ):
        timings["ttfb_ms"] = ms(time.monotonic() - started)
        body = await response.content.read(BODY_LIMIT)
        return response.status, body.decode("utf-8", "replace")


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    config = spec.config
    server = str(config.get("server") or "").rstrip("/")
    parts = urlsplit(server)
    if parts.scheme != "https" or not parts.hostname:
        return down(ErrorClass.PROTOCOL, "server must be the API server's https:// URL")
    try:
        url = server + _path(config)
        context = tls_context(config.get("ca_pem"))
    except ValueError as exc:
        return down(ErrorClass.PROTOCOL, f"config: {exc}")
    except ssl.SSLError as exc:
        return down(ErrorClass.TLS, f"cannot use ca_pem: {exc.reason or exc}")
    try:
        status, body = await _fetch(spec, url, context, timings, started)
    except BlockedTarget as exc:
        return down(ErrorClass.BLOCKED, str(exc), timings=timings)
    except aiohttp.ClientError as exc:
        outcome = client_error(exc, server)
        outcome.timings = timings
        return outcome
    timings["total_ms"] = ms(time.monotonic() - started)
    if status in (401, 403):
        return down(
            ErrorClass.AUTH,
            f"the API server refused the token ({status})",
            status_code=status,
            timings=timings,
        )
    if str(config.get("target") or "readyz") == "readyz":
        outcome = _readyz(status, body)
    else:
        outcome = replicas_judged(config, status, body)
    outcome.timings = timings
    outcome.response_time_ms = timings["total_ms"]
    return up_or_slow(spec, outcome) if outcome.outcome == Outcome.UP else outcome


check = timed_checker("kubernetes", _run)
