#!/usr/bin/env python
"""Run the whole product on embedded defaults: web + Celery worker + Celery beat.

SQLite in ./var, kombu's filesystem broker (no server to install), DEBUG on, the dev bootstrap
endpoint enabled. Migrates, creates the demo operator/organization/key and prints them, then
supervises the three processes: Ctrl-C (or any one of them dying) stops all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

EMBEDDED_ENV = {
    "DEBUG": "1",
    "HEALTHORCH_DEV_BOOTSTRAP": "1",
    "LOG_FORMAT": "console",
    # Celery refuses to run as root unless told; acceptable for a laptop demo, never in prod.
    "C_FORCE_ROOT": "1",
    "PYTHONUNBUFFERED": "1",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in EMBEDDED_ENV.items():
        env.setdefault(key, value)
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> int:
    env = _env()
    port = env.get("PORT", "8000")
    host = env.get("HOST", "127.0.0.1")
    print("healthorch: migrating the database (the first run takes about a minute)...", flush=True)
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "bootstrap_demo")

    celery = [PYTHON, "-m", "celery", "-A", "healthorch"]
    commands = {
        "web": [PYTHON, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
        "worker": [
            *celery,
            "worker",
            "--loglevel=INFO",
            "--queues=default,checks.default",
            "--concurrency=2",
            "--hostname=embedded@%h",
        ],
        "beat": [*celery, "beat", "--loglevel=INFO", "--pidfile="],
    }
    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, cmd in commands.items():
        # Own process group: the terminal's Ctrl-C reaches us once; we then stop each child.
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    print(
        f"healthorch: web on http://{host}:{port}/  (Ctrl-C stops web, worker and beat)", flush=True
    )

    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"healthorch: {name} exited with {proc.returncode}; stopping", flush=True)
                exit_code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.3)

    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("healthorch: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
