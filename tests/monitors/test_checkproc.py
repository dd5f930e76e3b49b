"""The check loop in a child process of its own (HEALTHORCH_CHECK_PROCESS; decision 0027),
with real child processes and real HTTP targets on 127.0.0.1: the outcomes are those of the
in-process loop, the outbound guard holds in the child, a child killed or stuck mid-batch
costs the batch nothing but a second try, and a worker that dies takes its child with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from apps.monitors import engine
from apps.monitors.checkers.base import ErrorClass, Outcome
from apps.monitors.checkproc import (
    RECORDING_NICENESS,
    CheckProcessLost,
    ProcessCheckLoop,
    shared_process_loop,
)
from apps.monitors.models import CheckResult
from tests.factories import make_monitor
from tests.monitors import targets
from tests.monitors.test_checkers_http import spec
from tests.support import wait_for

http_target = targets.http_target


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state


@pytest.fixture
def checks():
    loop = ProcessCheckLoop()
    yield loop
    loop.close()


def test_a_batch_runs_in_the_child_and_comes_back_in_order(checks, http_target):
    ok = http_target.route("/ok", body="all ok")
    broken = http_target.route("/broken", status=503)
    outcomes = checks.run(
        [
            spec(ok, assertions=['body contains "all ok"']),
            spec(broken),
            spec(ok, assertions=['body contains "nope"']),
        ],
        allow_private=True,
    )
    assert [o.outcome for o in outcomes] == [Outcome.UP, Outcome.DOWN, Outcome.DOWN]
    assert [o.error_class for o in outcomes] == ["", ErrorClass.STATUS, ErrorClass.ASSERTION]
    assert outcomes[0].status_code == 200
    assert outcomes[0].response_time_ms > 0
    assert all(abs(o.started_at - time.time()) < 30 for o in outcomes)
    child = checks.child_pid
    assert child is not None
    assert child != os.getpid()
    assert http_target.hits["/ok"] == 2
    assert checks.start() == child  # running already: not started again

    checks.close()
    assert gone(child)


def test_the_outbound_guard_holds_in_the_child(checks, http_target):
    """A loopback target with private targets not allowed is refused in the child, as in the
    worker: the allowance travels with the batch, not with the child's settings."""
    url = http_target.route("/inside")
    (outcome,) = checks.run([spec(url, allow_private=False)], allow_private=False)
    assert outcome.error_class == ErrorClass.BLOCKED
    assert http_target.hits["/inside"] == 0


def test_a_child_killed_mid_batch_costs_the_batch_a_second_try_only(checks, http_target):
    url = http_target.route("/slow", delay=1.5)
    checks.run([spec(http_target.route("/warm"))], allow_private=True)  # the child is up
    first = checks.child_pid
    result: list = []
    runner = threading.Thread(
        target=lambda: result.append(checks.run([spec(url)] * 3, allow_private=True))
    )
    runner.start()
    wait_for(lambda: http_target.hits["/slow"] >= 3, 20, "the batch in flight in the child")
    os.kill(first, signal.SIGKILL)
    runner.join(30)
    assert not runner.is_alive()
    (outcomes,) = result
    assert [o.outcome for o in outcomes] == [Outcome.UP] * 3
    assert http_target.hits["/slow"] == 6  # checked again, once, on a new child
    assert checks.child_pid not in (None, first)


def test_a_stuck_child_is_killed_and_its_batch_goes_to_a_new_one(http_target):
    checks = ProcessCheckLoop(batch_margin=1.0)
    try:
        checks.run([spec(http_target.route("/warm"))], allow_private=True)
        stuck = checks.child_pid
        os.kill(stuck, signal.SIGSTOP)
        began = time.monotonic()
        (outcome,) = checks.run([spec(http_target.route("/ok"), timeout=1.0)], allow_private=True)
        waited = time.monotonic() - began
    finally:
        checks.close()
    assert outcome.outcome == Outcome.UP
    assert 3.5 < waited < 20  # the batch's timeout (1 s) + the loop's grace (2 s) + margin (1 s)
    wait_for(lambda: gone(stuck), 10, "the stuck child killed")


def test_a_batch_that_loses_its_child_twice_fails_for_the_broker_to_redeliver(http_target):
    checks = ProcessCheckLoop()
    url = http_target.route("/slow", delay=3)
    killer_stop = threading.Event()

    def killer() -> None:
        killed: set[int] = set()
        while not killer_stop.is_set():
            pid = checks.child_pid
            if pid and pid not in killed and http_target.hits["/slow"] > len(killed):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with pytest.raises(CheckProcessLost):
            checks.run([spec(url)], allow_private=True)
    finally:
        killer_stop.set()
        thread.join(10)
        checks.close()
    assert http_target.hits["/slow"] == 2


CHILD_OF_A_WORKER = """
import sys, time
import django
django.setup()
from apps.monitors.checkproc import ProcessCheckLoop
from apps.monitors.checkers.base import CheckSpec
checks = ProcessCheckLoop()
checks.run([CheckSpec("m", "http", 3.0, {"url": sys.argv[1]}, allow_private=True)],
           allow_private=True)
print(checks.child_pid, flush=True)
time.sleep(120)
"""


def test_a_worker_killed_takes_its_check_process_with_it(http_target):
    """kill -9 of the worker alone (not its process group): the child sees its socket close
    and exits; no orphan keeps checking for nobody."""
    worker = subprocess.Popen(
        [sys.executable, "-c", CHILD_OF_A_WORKER, http_target.route("/ok")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "healthorch.settings"},
    )
    try:
        child = int(worker.stdout.readline())
        assert not gone(child)
        worker.kill()
        worker.wait(10)
        wait_for(lambda: gone(child), 15, "the check process to exit with its worker")
    finally:
        worker.kill()
        worker.wait(10)


@pytest.mark.django_db
def test_the_engine_records_what_the_child_checked(org, http_target, settings):
    settings.HEALTHORCH_CHECK_PROCESS = True
    up = make_monitor(org, "up", kind="http", config={"url": http_target.route("/up")})
    down = make_monitor(
        org, "down", kind="http", config={"url": http_target.route("/down", status=500)}
    )
    try:
        rows = engine.run_monitors([up.pk, down.pk])
        child = shared_process_loop().child_pid
    finally:
        shared_process_loop().close()
    assert child is not None
    assert child != os.getpid()
    assert {(str(r.monitor_id), r.outcome) for r in rows} == {
        (str(up.pk), "up"),
        (str(down.pk), "down"),
    }
    assert CheckResult.objects.filter(monitor=up, outcome="up", status_code=200).exists()


def test_the_callers_yield_the_cpu_to_the_check_process(http_target):
    """On a host short of CPU the check process is scheduled first: the task threads that
    sent it work run at a lower priority (niceness), the check process at the worker's own."""
    checks = ProcessCheckLoop()
    seen: dict[str, int] = {}

    def task() -> None:
        checks.run([spec(http_target.route("/ok"))], allow_private=True)
        seen["caller"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    try:
        before = os.getpriority(os.PRIO_PROCESS, 0)
        thread = threading.Thread(target=task)
        thread.start()
        thread.join(60)
        child = checks.child_pid
        assert child is not None
        seen["child"] = os.getpriority(os.PRIO_PROCESS, child)
    finally:
        checks.close()
    assert seen["child"] == before
    assert seen["caller"] == min(19, before + RECORDING_NICENESS)
