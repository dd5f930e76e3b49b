#!/usr/bin/env python
"""Run the whole product on embedded defaults: web + Celery worker + Celery beat + demo target.

SQLite in ./var, kombu's filesystem broker (no server to install), DEBUG on, the dev bootstrap
endpoint enabled. Migrates, creates the demo operator/organization/key and its monitors (the
product itself and the demo target's scenarios) and prints them, then supervises the four
processes: Ctrl-C (or any one of them dying) stops all of them. The demo target
(`manage.py demo_target`) serves scripted scenarios on PORT+1 (TLS on PORT+2; override with
DEMO_TARGET_PORT / DEMO_TARGET_TLS_PORT, DEMO_TARGET=0 leaves it out) and pushes metrics.
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
    # Told, it still warns on every start; so does runserver, which is the point of this mode.
    "C_FORCE_ROOT": "1",
    "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
    "DJANGO_RUNSERVER_HIDE_WARNING": "true",
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
    demo = env.get("DEMO_TARGET", "1") != "0"
    if demo:
        env.setdefault("DEMO_TARGET_PORT", str(int(port) + 1))
        env.setdefault("DEMO_TARGET_TLS_PORT", str(int(port) + 2))
    else:
        env.pop("DEMO_TARGET_PORT", None)
    var_dir = Path(env.get("HEALTHORCH_VAR_DIR", ROOT / "var"))
    started = time.monotonic()
    print("healthorch: preparing the database...", flush=True)
    # An empty database is built in one step (apps/core/management/commands/migrate.py).
    _manage(env, "migrate", "--noinput", "-v", "0")
    print(f"healthorch: database ready ({time.monotonic() - started:.0f}s)", flush=True)
    _manage(env, "bootstrap_demo")
    print(f"healthorch: demo organization ready ({time.monotonic() - started:.0f}s)", flush=True)

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
    if demo:
        commands["demo-target"] = [
            PYTHON,
            "manage.py",
            "demo_target",
            f"--port={env['DEMO_TARGET_PORT']}",
            f"--tls-port={env['DEMO_TARGET_TLS_PORT']}",
            f"--push-metrics=http://{host}:{port}",
            f"--api-key-file={var_dir / 'demo-credentials.json'}",
        ]
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
    base = f"http://{host}:{port}"
    print(
        f"healthorch: running (Ctrl-C stops every process)\n"
        f"  sign up  {base}/ (verification mails are printed here)\n"
        f"  console  {base}/admin/\n"
        f"  API docs {base}/api/docs/\n"
        f"  health   {base}/health",
        flush=True,
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
