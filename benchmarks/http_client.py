#!/usr/bin/env python
"""The http checker alone, this tree's client against another commit's (default: the merge
base with `main`, the aiohttp client), interleaved in one run: CPU per check and latency.

No database, no check loop: `checkers.http.check` with one shared client (`make_session`,
limit 200), checks started at a fixed pace against a local target answering in 50 ms
(benchmarks/target.py) over a new connection each, two assertions each (status and body).
Each side runs in its own process (the other commit from a temporary git worktree), `--rounds`
times, alternating, so both see the same machine. CPU per check is the process's user+system
time over the paced checks (start-up and a warm-up excluded): what the client costs whatever
the wait, so it stays meaningful on a loaded machine; the latency figures do not.

    DEBUG=1 LOG_LEVEL=WARNING .venv/bin/python benchmarks/http_client.py \\
        [--checks 3000] [--rate 800] [--rounds 3] [--against REF]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSERTIONS = ["status == 200", 'body contains "ok"']


def measure(port: int, checks: int, rate: float) -> dict:
    """In this process: warm up, then `checks` paced checks through one shared client."""
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
    import django

    django.setup()
    from apps.monitors.checkers import http
    from apps.monitors.checkers.base import CheckSpec, RunContext

    spec = CheckSpec(
        "bench",
        "http",
        10.0,
        {"url": f"http://127.0.0.1:{port}/health", "assertions": ASSERTIONS},
        allow_private=True,
    )

    async def run() -> dict:
        client = http.make_session(allow_private=True, limit=200)
        ctx = RunContext(http=client)
        for _ in range(50):
            await http.check(spec, ctx)
        began, cpu0 = time.perf_counter(), os.times()
        tasks = []
        for i in range(checks):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(http.check(spec, ctx)))
        results = await asyncio.gather(*tasks)
        wall, cpu1 = time.perf_counter() - began, os.times()
        await client.close()
        latency = sorted(r.response_time_ms for r in results if r.response_time_ms is not None)
        return {
            "client": "libcurl" if "pycurl" in sys.modules else "aiohttp",
            "up": sum(r.outcome == "up" for r in results),
            "wall": wall,
            "cpu_ms": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / checks * 1e3,
            "user_ms": (cpu1.user - cpu0.user) / checks * 1e3,
            "p50": latency[len(latency) // 2] if latency else float("nan"),
            "p95": latency[int(len(latency) * 0.95)] if latency else float("nan"),
        }

    return asyncio.run(run())


def start_target(seconds: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "target.py"),
            "--port",
            "0",
            "--delay",
            "0.05",
            "--max-seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"target did not start: {line!r}")
    return proc, int(line.split()[1])


def side(tree: Path, port: int, args) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(tree / "benchmarks" / "http_client.py"),
            *("--child", str(port), "--checks", str(args.checks), "--rate", str(args.rate)),
        ],
        capture_output=True,
        text=True,
        cwd=tree,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=800.0, help="checks started per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", default=None, help="the other commit (default: merge base)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.checks, args.rate)))
        return

    repo = HERE.parent
    ref = (
        args.against
        or subprocess.run(
            ["git", "-C", str(repo), "merge-base", "HEAD", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    scratch = Path(tempfile.mkdtemp(prefix="http-client-"))
    other = scratch / "tree"
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(other), ref],
        check=True,
    )
    # The other tree runs its own http_client.py if it has one, else this one's copy.
    if not (other / "benchmarks" / "http_client.py").exists():
        shutil.copy(HERE / "http_client.py", other / "benchmarks" / "http_client.py")
    target, port = start_target(args.rounds * 2 * (args.checks / args.rate + 60) + 60)
    print(f"load before: {loadavg()}; {args.checks} checks at {args.rate:g}/s per side, ")
    print(f"this tree against {ref[:10]}, {args.rounds} rounds alternating\n")
    print(f"{'client':8} {'round':>5} {'up':>6} {'CPU/check':>10} {'user':>6} {'lat50':>7}")
    rows: dict[str, list[dict]] = {}
    try:
        for n in range(args.rounds):
            for tree in (repo, other):
                r = side(tree, port, args)
                rows.setdefault(r["client"], []).append(r)
                print(
                    f"{r['client']:8} {n + 1:5d} {r['up']:6d} {r['cpu_ms']:8.3f} ms"
                    f" {r['user_ms']:6.3f} {r['p50']:7.1f}   p95 {r['p95']:.1f} ms,"
                    f" load {loadavg()}"
                )
    finally:
        target.terminate()
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "remove", "--force", str(other)], check=False
        )
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {c: statistics.median(r["cpu_ms"] for r in rs) for c, rs in rows.items()}
    print()
    for client, value in medians.items():
        print(f"{client:8} median CPU per check {value:.3f} ms")
    if {"aiohttp", "libcurl"} <= set(medians):
        print(f"aiohttp / libcurl CPU per check: {medians['aiohttp'] / medians['libcurl']:.2f}x")
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()
