"""The load of benchmarks/soak.py, for locust (run by that script; not a standalone benchmark).

Reads the plan soak.py wrote (SOAK_PLAN: a JSON file with each organization's API key,
heartbeat ping tokens and monitor ids, and how many users of each class to run) and writes
what it saw to SOAK_OUT when locust quits: per request name, the count, the statuses, the
latencies' percentiles (exact, from every sample, not locust's rounded buckets) and a few
examples of any 5xx or failed connection.

Four user classes, each a fixed number of users at a fixed rate (constant throughput), so the
offered load does not drop when the server slows down:

- `Pinger`: `GET /ping/<uuid>` of a random heartbeat monitor.
- `Ingester`: `POST /api/v1/metrics` with a few samples of one source.
- `Reader`: monitor list, one monitor, its results, the incident list (the API key's
  organization).
- `Writer`: a monitor's life: create, update, pause, resume, delete (monitors of its own, so
  the seeded monitors' schedules stay as soak.py planned them).

No Django here: locust runs under gevent, in its own process.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict

from locust import HttpUser, constant_throughput, events, task

PLAN = json.loads(open(os.environ["SOAK_PLAN"]).read())  # noqa: SIM115 (read at import)
USERS = PLAN["users"]
ORGS = PLAN["orgs"]
TOKENS = [t for org in ORGS for t in org["ping_tokens"]]

latencies: dict[str, list[float]] = defaultdict(list)
statuses: dict[str, Counter] = defaultdict(Counter)
examples: list[dict] = []
started = time.time()
WARMUP = float(os.environ.get("SOAK_WARMUP", "0"))


@events.request.add_listener
def _record(
    request_type, name, response_time, response_length, response=None, exception=None, **kw
):
    code = getattr(response, "status_code", 0) or 0
    statuses[name][str(code)] += 1
    if time.time() - started >= WARMUP:
        latencies[name].append(response_time)
    if (code == 0 or code >= 500) and len(examples) < 20:
        body = getattr(response, "text", "") or ""
        examples.append(
            {
                "name": name,
                "status": code,
                "at": round(time.time() - started, 1),
                # A failed connection's own error (catch_response wraps it in its failure).
                "error": repr(getattr(response, "error", None) or exception or ""),
                "body": body[:300],
            }
        )


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@events.quitting.add_listener
def _write(environment, **kw):
    out = {}
    for name, values in latencies.items():
        ordered = sorted(values)
        out[name] = {
            "count": len(ordered),
            "statuses": dict(statuses[name]),
            "p50": _pct(ordered, 0.50),
            "p95": _pct(ordered, 0.95),
            "p99": _pct(ordered, 0.99),
            "max": ordered[-1] if ordered else float("nan"),
            "latencies": values,
        }
    with open(os.environ["SOAK_OUT"], "w") as f:
        json.dump({"requests": out, "examples": examples, "seconds": time.time() - started}, f)


class Org:
    def on_start(self) -> None:
        self.org = random.choice(ORGS)
        self.client.headers["X-API-Key"] = self.org["api_key"]

    def check(self, response, *ok: int) -> None:
        if response.status_code not in ok:
            response.failure(f"{response.status_code}: {response.text[:200]}")
        else:
            response.success()


class Pinger(HttpUser):
    fixed_count = USERS["ping"]
    wait_time = constant_throughput(PLAN["rates"]["ping"])

    @task
    def ping(self) -> None:
        self.client.get(f"/ping/{random.choice(TOKENS)}", name="ping")


class Ingester(Org, HttpUser):
    fixed_count = USERS["metrics"]
    wait_time = constant_throughput(PLAN["rates"]["metrics"])

    @task
    def ingest(self) -> None:
        source = f"host-{random.randrange(20)}"
        body = {
            "samples": [
                {
                    "source": source,
                    "metrics": {"cpu.load": random.random() * 4, "mem.used_pct": 50.0 + i},
                }
                for i in range(5)
            ]
        }
        with self.client.post(
            "/api/v1/metrics", json=body, name="POST /api/v1/metrics", catch_response=True
        ) as r:
            self.check(r, 202)


class Reader(Org, HttpUser):
    fixed_count = USERS["read"]
    wait_time = constant_throughput(PLAN["rates"]["read"])

    def monitor_id(self) -> str:
        return random.choice(self.org["monitor_ids"])

    @task(3)
    def monitors(self) -> None:
        page = random.randint(1, self.org["pages"])
        with self.client.get(
            f"/api/v1/monitors/?page={page}&page_size=50",
            name="GET /api/v1/monitors/",
            catch_response=True,
        ) as r:
            self.check(r, 200)

    @task(3)
    def monitor(self) -> None:
        with self.client.get(
            f"/api/v1/monitors/{self.monitor_id()}/",
            name="GET /api/v1/monitors/<id>/",
            catch_response=True,
        ) as r:
            self.check(r, 200)

    @task(2)
    def results(self) -> None:
        with self.client.get(
            f"/api/v1/monitors/{self.monitor_id()}/results/?page_size=20",
            name="GET /api/v1/monitors/<id>/results/",
            catch_response=True,
        ) as r:
            self.check(r, 200)

    @task(2)
    def incidents(self) -> None:
        with self.client.get(
            "/api/v1/incidents/?page_size=20", name="GET /api/v1/incidents/", catch_response=True
        ) as r:
            self.check(r, 200)


class Writer(Org, HttpUser):
    fixed_count = USERS["write"]
    wait_time = constant_throughput(PLAN["rates"]["write"])

    def on_start(self) -> None:
        super().on_start()
        self.mine: str | None = None
        self.step = 0

    @task
    def lifecycle(self) -> None:
        # create -> update -> pause -> resume -> delete, one step per task, then again.
        step = self.step % 5
        self.step += 1
        if step == 0 or self.mine is None:
            with self.client.post(
                "/api/v1/monitors/",
                json={
                    "name": f"load {uuid.uuid4().hex[:12]}",
                    "kind": "http",
                    "interval_seconds": 300,
                    "config": {"url": PLAN["write_url"]},
                },
                name="POST /api/v1/monitors/",
                catch_response=True,
            ) as r:
                self.check(r, 201)
                self.mine = r.json()["id"] if r.status_code == 201 else None
                self.step = 1
            return
        path = f"/api/v1/monitors/{self.mine}/"
        if step == 1:
            with self.client.patch(
                path,
                json={"name": f"load {uuid.uuid4().hex[:12]}", "tags": ["soak"]},
                name="PATCH /api/v1/monitors/<id>/",
                catch_response=True,
            ) as r:
                self.check(r, 200)
        elif step == 2:
            with self.client.post(
                f"{path}pause", name="POST /api/v1/monitors/<id>/pause", catch_response=True
            ) as r:
                self.check(r, 200)
        elif step == 3:
            with self.client.post(
                f"{path}resume", name="POST /api/v1/monitors/<id>/resume", catch_response=True
            ) as r:
                self.check(r, 200)
        else:
            with self.client.delete(
                path, name="DELETE /api/v1/monitors/<id>/", catch_response=True
            ) as r:
                self.check(r, 204)
            self.mine = None
