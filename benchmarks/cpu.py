"""CPU accounting for the benchmark scripts (read-only /proc): who used the 2 shared cores.

`others` is the machine's busy time minus the processes a script names (itself, its workers,
PostgreSQL, Redis): the other engineers' test suites on this shared machine. A figure taken
while `others` is high says more about them than about the code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def pids_named(*names: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_cpu(pid: int) -> float:
    """The process and its children (a worker and its pool); children that exited are not
    counted."""
    return proc_cpu(pid) + sum(tree_cpu(c) for c in children(pid))


def session_cpu(sid: int) -> float:
    """Every live process of a session (a worker started with start_new_session=True, its pool
    included, however deep)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:
                    total += (int(fields[11]) + int(fields[12])) / CLK_TCK
            except (OSError, IndexError, ValueError):
                continue
    return total


def machine_idle() -> float:
    """Seconds of idle CPU time over all cores since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / CLK_TCK


class CpuWindow:
    """Cores used per second of wall time between `start()` and `stop()`, per named source,
    plus `machine` (busy cores) and `others` (machine minus every named source)."""

    def __init__(self, sources: dict[str, Callable[[], float]]) -> None:
        self.sources = sources
        self.began: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        read = {name: source() for name, source in self.sources.items()}
        read["wall"], read["idle"] = time.monotonic(), machine_idle()
        return read

    def start(self) -> CpuWindow:
        self.began = self._read()
        return self

    def stop(self) -> dict[str, float]:
        end = self._read()
        wall = max(end["wall"] - self.began["wall"], 1e-9)
        # A process that exited within the window takes its CPU with it (PostgreSQL backends
        # come and go): that CPU shows under `others`, and a source never goes below zero.
        used = {name: max(0.0, end[name] - self.began[name]) / wall for name in self.sources}
        used["machine"] = (os.cpu_count() or 2) - (end["idle"] - self.began["idle"]) / wall
        used["others"] = max(0.0, used["machine"] - sum(used[name] for name in self.sources))
        self.used = used
        return used

    def line(self) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in self.used.items())
