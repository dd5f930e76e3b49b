"""Scenario behaviour, independent of HTTP: what the n-th request to a scenario answers.

Built-in scenarios answer as their name says; any other name starts healthy. The control
endpoint switches a scenario's mode (and back to `auto`, its scripted behaviour); a restart
(the demo's healing hook) ends a recovering scenario's down phase until its next period.
The clock is injectable, so the scripted times can be checked without waiting for them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MODES = ("healthy", "flaky", "slow", "down", "recovering")
BUILTIN = {name: name for name in MODES}


@dataclass(frozen=True)
class Answer:
    status: int
    delay_s: float
    body: str


@dataclass
class Script:
    """The knobs of every scenario; defaults give a demo that changes every few minutes."""

    seed: int = 7
    flaky_failure_ratio: float = 0.35
    slow_ms: int = 1200
    # recovering: down for `recovering_down_s` at the start of every `recovering_period_s`,
    # unless restarted meanwhile (then up until the next period starts)
    recovering_period_s: float = 300.0
    recovering_down_s: float = 120.0


@dataclass
class _State:
    mode: str | None = None  # None: the scenario's own (auto)
    hits: int = 0
    failures: int = 0
    restarts: int = 0
    restarted_at: float | None = None  # on the scenarios' clock


@dataclass
class Scenarios:
    script: Script = field(default_factory=Script)
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    _states: dict[str, _State] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def mode_of(self, name: str) -> str:
        state = self._states.get(name)
        if state is not None and state.mode:
            return state.mode
        return BUILTIN.get(name, "healthy")

    def set_mode(self, name: str, mode: str) -> None:
        if mode != "auto" and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join((*MODES, 'auto'))}")
        with self._lock:
            self._states.setdefault(name, _State()).mode = None if mode == "auto" else mode

    def reset(self) -> None:
        with self._lock:
            self._states.clear()
            self.started = self.clock()

    def restart(self, name: str) -> dict:
        """The restart hook: a recovering scenario is up again from now until its next period
        (other modes do not change: a restart does not fix a service that is down for good)."""
        with self._lock:
            state = self._states.setdefault(name, _State())
            state.restarts += 1
            state.restarted_at = self.clock()
        return self.describe()[name]

    def answer(self, name: str) -> Answer:
        with self._lock:
            state = self._states.setdefault(name, _State())
            n = state.hits
            state.hits += 1
        answer = self._answer(name, self.mode_of(name), n, state.restarted_at)
        if answer.status >= 500:
            with self._lock:
                state.failures += 1
        return answer

    def _answer(self, name: str, mode: str, n: int, restarted_at: float | None) -> Answer:
        s = self.script
        if mode == "down":
            return Answer(503, 0, f"{name}: down (scripted)\n")
        if mode == "slow":
            return Answer(200, s.slow_ms / 1000, f"{name}: ok, slowly\n")
        if mode == "flaky":
            # The n-th answer depends on (seed, name, n) only: reproducible across runs.
            roll = random.Random(f"{s.seed}:{name}:{n}").random()  # noqa: S311 - not security
            if roll < s.flaky_failure_ratio:
                return Answer(500, 0, f"{name}: failed (request {n})\n")
            return Answer(200, 0.005, f"{name}: ok (request {n})\n")
        if mode == "recovering":
            elapsed = self.clock() - self.started
            phase = elapsed % s.recovering_period_s
            period_start = self.started + elapsed - phase
            restarted = restarted_at is not None and restarted_at >= period_start
            if phase < s.recovering_down_s and not restarted:
                return Answer(
                    503, 0, f"{name}: down, recovering in {s.recovering_down_s - phase:.0f} s\n"
                )
            return Answer(
                200, 0.005, f"{name}: restarted\n" if restarted else f"{name}: recovered\n"
            )
        return Answer(200, 0.002, f"{name}: ok\n")

    def describe(self) -> dict[str, dict]:
        with self._lock:
            names = set(BUILTIN) | set(self._states)
            return {
                name: {
                    "mode": self.mode_of(name),
                    "hits": self._states.get(name, _State()).hits,
                    "failures": self._states.get(name, _State()).failures,
                    "restarts": self._states.get(name, _State()).restarts,
                }
                for name in sorted(names)
            }
