"""Deterministic host metrics for the demo: the k-th sample depends only on (seed, k).

cpu idles around 30 % with a slow wave and spikes above 90 % for 11 samples of every 60 (at
one sample every 10 s: 110 s of every 10 minutes, from the 400th second); memory creeps up
and drops (a leak and a restart); the error rate follows the cpu spike. The pusher keeps the
k-th sample at start + k * interval, so the spike lasts what the docs say.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

logger = logging.getLogger(__name__)
SPIKE_EVERY, SPIKE_LENGTH, SPIKE_AT = 60, 11, 40
INTERVAL_S = 10.0  # the demo target pushes one sample every INTERVAL_S


def sample(seed: int, k: int) -> dict[str, float]:
    rng = random.Random(f"{seed}:metrics:{k}")  # noqa: S311 - not security
    spiking = SPIKE_AT <= k % SPIKE_EVERY < SPIKE_AT + SPIKE_LENGTH
    cpu = 93 + rng.uniform(0, 5) if spiking else 30 + 12 * math.sin(k / 6) + rng.uniform(-3, 3)
    memory = 48 + 0.3 * (k % 120) + rng.uniform(-1, 1)
    errors = 6 + rng.uniform(0, 2) if spiking else 0.3 + rng.uniform(0, 0.4)
    return {
        "cpu": round(max(0.0, min(100.0, cpu)), 2),
        "memory": round(max(0.0, min(100.0, memory)), 2),
        "error_rate": round(errors, 3),
    }


class MetricPusher(threading.Thread):
    """Posts one sample every `interval` seconds to `<base_url>/api/v1/metrics`."""

    def __init__(self, *, base_url: str, api_key: str, seed: int, interval: float, source: str):
        super().__init__(name="demo-metrics", daemon=True)
        self.url = base_url.rstrip("/") + "/api/v1/metrics"
        self.api_key, self.seed, self.interval, self.source = api_key, seed, interval, source
        self.stopped = threading.Event()
        self.sent = 0
        self.k = 0
        self.epoch = datetime.now(UTC)  # the k-th sample is stamped epoch + k * interval

    def push_once(self) -> int:
        body = json.dumps(
            {
                "source": self.source,
                "metrics": sample(self.seed, self.k),
                # On the grid, not the send time: a slow request does not shorten a breach.
                "ts": (self.epoch + timedelta(seconds=self.k * self.interval)).isoformat(),
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - a URL we were given, http(s) only
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": self.api_key},
        )
        self.k += 1
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            self.sent += 1
            return response.status

    def run(self) -> None:
        started = time.monotonic()
        self.epoch = datetime.now(UTC)
        while not self.stopped.is_set():
            try:
                self.push_once()
            except (urllib.error.URLError, OSError) as exc:
                # The product may still be starting; the next tick tries again.
                logger.info("demo metrics not accepted yet: %s", exc)
            # On a fixed grid (not "interval after the last push"): request times do not add up.
            self.stopped.wait(max(0.0, started + self.k * self.interval - time.monotonic()))

    def stop(self) -> None:
        self.stopped.set()
