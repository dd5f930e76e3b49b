"""Domain metrics (Prometheus), named as the dashboards and alerts expect.

The names are fixed: docs/decisions/0011-domain-metric-names.md.

With several processes (gunicorn workers, Celery pool), set PROMETHEUS_MULTIPROC_DIR so /metrics
merges every process's counters. Web (gunicorn's master), workers and beat serve theirs on
METRICS_PORT (`serve_from_environment`, started by docker/gunicorn.conf.py and healthorch.celery).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from django.db import connection
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from healthorch import config

logger = logging.getLogger(__name__)

monitor_checks_executed_total = Counter(
    "monitor_checks_executed_total", "Checks run, by monitor kind and outcome", ["kind", "outcome"]
)
monitor_check_duration_seconds = Histogram(
    "monitor_check_duration_seconds",
    "Wall time of one check as the checker measured it",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
scheduler_jobs_scheduled_total = Counter(
    "scheduler_jobs_scheduled_total", "Monitor checks claimed and enqueued by the dispatcher"
)
scheduler_lag_seconds = Histogram(
    "scheduler_lag_seconds",
    "How late a due check was when the dispatcher claimed it",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
scheduler_checks_skipped_total = Counter(
    "scheduler_checks_skipped_total",
    "Due checks skipped because the dispatcher fell a whole interval behind (an outage)",
)
# Alert on `time() - scheduler_last_dispatch_timestamp_seconds`: it stops moving when beat or
# the worker running the dispatch stops. "max" across processes: the latest dispatch anywhere.
scheduler_last_dispatch_timestamp_seconds = Gauge(
    "scheduler_last_dispatch_timestamp_seconds",
    "Unix time the dispatcher last ran (claimed due checks, or found none due)",
    multiprocess_mode="max",
)
incidents_created_total = Counter("incidents_created_total", "Incidents opened", ["severity"])
notifier_notifications_sent_total = Counter(
    "notifier_notifications_sent_total", "Notification delivery attempts", ["channel", "outcome"]
)
heartbeat_pings_total = Counter(
    "heartbeat_pings_total",
    "Pings answered by the fast ping path, by answer (recorded, not_found, limited, error)",
    ["answer"],
)
statuspage_emails_sent_total = Counter(
    "statuspage_emails_sent_total",
    "Status page subscriber emails, by kind (confirmation, update) and outcome (sent, failed)",
    ["kind", "outcome"],
)
statuspage_requests_total = Counter(
    "statuspage_requests_total",
    "Status page renderings served, by format (html, json, rss) and cache (hit, miss, private)",
    ["format", "cache"],
)

# --- requests, under the names a Prometheus user expects --------------------------------------
# `route` is the URL pattern that answered (`/api/v1/monitors/<uuid:pk>`), never the raw path,
# so the number of series stays bounded whatever ids and typos arrive; a path no pattern matched
# is `unmatched`. The fast ping path answers before Django and counts in heartbeat_pings_total.
http_requests_total = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route (the URL pattern) and status",
    ["method", "route", "status"],
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "Time from the first middleware to the response, by method, route and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# --- the platform's state, read from the database when scraped -------------------------------
# Backlogs are state, not events: no counter says how many notifications are waiting now. Beat
# (exactly one per deployment, so each figure is served once) reads them at scrape time from
# the sources connected in healthorch/wiring.py; each source yields (name, help, value).

StateSource = Callable[[], Iterable[tuple[str, str, float]]]
_state_sources: list[StateSource] = []


def read_state_with(source: StateSource) -> None:
    """Serve `source`'s gauges on beat's /metrics (connecting twice changes nothing)."""
    if source not in _state_sources:
        _state_sources.append(source)


class StateCollector(Collector):
    """Gauges from the state sources, read at each scrape. A source that fails (the database
    is away) is logged and left out: the scrape itself still answers, so `up` keeps meaning
    that the process runs."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            for source in list(_state_sources):
                try:
                    for name, doc, value in source():
                        yield GaugeMetricFamily(name, doc, value=value)
                except Exception as exc:
                    logger.warning(
                        "metrics state source failed",
                        extra={
                            "source": getattr(source, "__name__", str(source)),
                            "error": str(exc),
                        },
                    )
        finally:
            # Each scrape runs in a thread of its own: its connection would otherwise stay open.
            connection.close()


# --- serving a process's metrics on its own port --------------------------------------------
# Web (gunicorn's master, docker/gunicorn.conf.py), each worker and beat serve on METRICS_PORT
# (docs/decisions/0014-every-process-serves-its-metrics.md).


@dataclass
class MetricsServer:
    port: int
    multiprocess: bool
    httpd: WSGIServer


_server_lock = threading.Lock()
_server: MetricsServer | None = None


def metrics_registry(*, state: bool = False) -> CollectorRegistry:
    """What this process serves: with PROMETHEUS_MULTIPROC_DIR, the sum over every process
    writing into that folder (the pool's children included); without it, this process only.
    `state` adds the platform's state gauges (beat's server)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    elif state:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    else:
        return REGISTRY
    if state:
        registry.register(StateCollector())
    return registry


class _ProcessRegistry(Collector):
    """This process's own metrics, inside another registry."""

    def collect(self) -> Iterator:
        yield from REGISTRY.collect()


def serve_from_environment(*, role: str, forks: bool = False) -> MetricsServer | None:
    """Serve /metrics on METRICS_PORT (at METRICS_ADDR, all interfaces by default), once per
    process; off (None) when METRICS_PORT is unset or 0. A port already taken is an error in
    the log, not a crash: the process still does its work. `forks`: the work happens in child
    processes (a prefork pool, gunicorn's workers), whose counts only PROMETHEUS_MULTIPROC_DIR
    brings here; without it the server is still started, with a warning saying so."""
    global _server
    port = config.integer("METRICS_PORT", 0, minimum=0)
    if not port:
        return None
    # All interfaces by default: Prometheus scrapes a container or pod at its own address.
    addr = config.string("METRICS_ADDR", "0.0.0.0")  # noqa: S104
    multiproc = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    with _server_lock:
        if _server is not None:
            return _server
        try:
            registry = metrics_registry(state=role == "beat")
            httpd, _ = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            logger.error(
                "metrics server not started",
                extra={"role": role, "port": port, "addr": addr, "error": str(exc)},
            )
            return None
        _server = MetricsServer(port=port, multiprocess=multiproc, httpd=httpd)
    logger.info(
        "serving metrics",
        extra={"role": role, "port": port, "addr": addr, "multiprocess": multiproc},
    )
    if forks and not multiproc:
        logger.warning(
            "METRICS_PORT is set without PROMETHEUS_MULTIPROC_DIR: the %s's child processes "
            "do the work and their counters will not be served; set PROMETHEUS_MULTIPROC_DIR",
            role,
        )
    return _server


def process_exited(pid: int) -> None:
    """Forget a dead pool process's live gauges (its counters stay summed, as they should)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
