"""Starting real Celery processes on the test database for the metrics tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
from django.db import connection

from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]


def database_url_of_this_test() -> str:
    """The database this test writes to, as a URL a separate process can open."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_celery(args: list[str], *, metrics_port: int, multiproc_dir: Path, **env: str):
    """`celery -A healthorch <args>` serving its metrics on 127.0.0.1:`metrics_port`."""
    multiproc_dir.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "healthorch", *args, "--loglevel=WARNING"],
        cwd=ROOT,
        env={
            **os.environ,
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url_of_this_test(),
            "METRICS_PORT": str(metrics_port),
            "METRICS_ADDR": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_serving(proc: subprocess.Popen, url: str, what: str) -> None:
    def serving() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode(errors="replace"))
        try:
            return requests.get(url, timeout=5).ok
        except requests.RequestException:
            return False

    wait_for(serving, 90, what)


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM (a warm shutdown), SIGKILL if it hangs; returns what it wrote to stderr."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode(errors="replace")
