"""The backup and restore procedure of docs/operations/backup.md, run for real.

PostgreSQL: a source database is built by real processes (`manage.py migrate`, then
tests/core/backup_scene.py through the services: two organizations, monitors, an incident,
API keys, channels, a healing policy and secrets under two keys, one rotation apart), dumped by
the real `pg_dump -Fc`, restored by `pg_restore` into a fresh database, migrated by a real
`manage.py migrate`, verified by `manage.py check_secrets` and served by a real gunicorn: each
organization's API key works and sees exactly its monitors and incidents, never the other's.
Then, with the old key left out of HEALTHORCH_ENCRYPTION_KEYS, `check_secrets` exits 1
naming it and the API answers 503 in the error shape where it needs a secret under that key.

SQLite (the embedded default): `manage.py backup_sqlite` copies the database while a gunicorn
serves it, and the copy passes the same checks.

Every database and file is made by the test with a unique name and removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet
from django.db import connection

from apps.core.crypto import key_id
from tests.support import serve_gunicorn

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
BOTH = f"{NEW},{OLD}"  # the ring after the rotation: NEW encrypts, OLD still decrypts


def _manage(url: str, keys: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": url,
            "HEALTHORCH_ENCRYPTION_KEYS": keys,
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _build_source(url: str) -> dict[str, Any]:
    """Migrate an empty database and write the scene into it; returns what the scene printed."""
    assert "building the schema in one step" in _ok(_manage(url, BOTH, "migrate", "--noinput"))
    code = "from tests.core.backup_scene import build; build()"
    return json.loads(_ok(_manage(url, BOTH, "shell", "-c", code)).splitlines()[-1])


def _migrated(url: str, keys: str) -> None:
    migrated = _ok(_manage(url, keys, "migrate", "--noinput"))
    assert "No migrations to apply." in migrated  # a restored database is not rebuilt


def _verified(url: str, scene: dict[str, Any]) -> None:
    """What must hold of a restored, migrated database with the whole key ring."""
    checked = _ok(_manage(url, BOTH, "check_secrets"))
    assert "alerts.Channel.secret: 2 stored, 2 decrypt" in checked
    assert "healing.HealingPolicy.action_secret: 2 stored, 2 decrypt" in checked
    assert "monitors.Monitor.secret: 2 stored, 2 decrypt" in checked
    assert "All 6 stored secrets decrypt." in checked
    # One organization's secrets under each key: both must stay in the ring until rewritten.
    # (Columns this scene stores nothing in, such as single sign-on's, say "0 stored".)
    for line in (line for line in checked.splitlines() if ": 2 stored, " in line):
        assert f"1 with {key_id(NEW)}" in line
        assert f"1 with {key_id(OLD)}" in line
    with serve_gunicorn({"DATABASE_URL": url, "HEALTHORCH_ENCRYPTION_KEYS": BOTH}) as (_, port):
        _each_organization_sees_its_own(port, scene)
        for org in scene.values():  # a change that merges the stored secret decrypts it
            assert _patch_channel(port, org).status_code == 200


def _get(port: int, org: dict[str, Any], path: str) -> requests.Response:
    return requests.get(
        f"http://127.0.0.1:{port}/api/v1/{path}", headers={"X-API-Key": org["key"]}, timeout=30
    )


def _patch_channel(port: int, org: dict[str, Any]) -> requests.Response:
    return requests.patch(
        f"http://127.0.0.1:{port}/api/v1/channels/{org['channels'][0]}/",
        json={"config": {"url": "http://127.0.0.1:9/moved"}},
        headers={"X-API-Key": org["key"]},
        timeout=30,
    )


def _each_organization_sees_its_own(port: int, scene: dict[str, Any]) -> None:
    for name, org in scene.items():
        other = scene["new" if name == "old" else "old"]
        assert _get(port, org, "organization").json()["slug"] == org["slug"]
        monitors = _get(port, org, "monitors/").json()["results"]
        assert sorted(m["id"] for m in monitors) == org["monitors"]
        incidents = _get(port, org, "incidents/").json()["results"]
        assert [i["id"] for i in incidents] == org["incidents"]
        channels = _get(port, org, "channels/").json()  # a short list: not paginated
        assert [c["id"] for c in channels] == org["channels"]
        for path in (f"monitors/{other['monitors'][0]}/", f"incidents/{other['incidents'][0]}/"):
            assert _get(port, org, path).status_code == 404


# --- PostgreSQL ------------------------------------------------------------------------------


@contextmanager
def _postgres_databases(*kinds: str) -> Iterator[dict[str, str]]:
    """Fresh, uniquely named databases on the test's PostgreSQL server; dropped afterwards."""
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    user, password = settings["USER"], settings["PASSWORD"]
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"{settings['NAME']}"[:40] + f"_bk_{kind}_{tag}" for kind in kinds}
    auth = f"{user}:{password}@" if password else f"{user}@"
    with psycopg.connect(
        host=host, port=port, user=user, password=password or None, dbname="postgres"
    ) as admin:
        admin.autocommit = True
        try:
            for name in names.values():
                admin.execute(f'CREATE DATABASE "{name}"')
            yield {kind: f"postgres://{auth}{host}:{port}/{name}" for kind, name in names.items()}
        finally:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg(program: str, url: str, *args: str) -> None:
    """pg_dump or pg_restore as the procedure runs it (the URL is libpq's own syntax)."""
    done = subprocess.run(
        [program, *args, f"--dbname={url.replace('postgres://', 'postgresql://', 1)}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.django_db
def test_a_postgres_dump_restores_into_a_fresh_database_that_works(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump needs PostgreSQL: run with DATABASE_URL=postgres://... (CI does)")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed (Debian: postgresql-client)")
    dump = tmp_path / "healthorch.dump"
    with _postgres_databases("source", "restored") as urls:
        scene = _build_source(urls["source"])
        _pg(
            "pg_dump",
            urls["source"],
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={dump}",
        )
        _pg(
            "pg_restore",
            urls["restored"],
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            str(dump),
        )
        _migrated(urls["restored"], NEW)

        # Started first without the key that wrote the first organization's secrets (the
        # rotation's old key, left out by mistake): told which key is missing, by the check
        # and by the API, and nothing is written meanwhile.
        missing = _manage(urls["restored"], NEW, "check_secrets")
        assert missing.returncode == 1
        assert "alerts.Channel.secret: 2 stored, 1 decrypt" in missing.stdout
        assert f"1 need key {key_id(OLD)}" in missing.stdout
        assert f"key {key_id(OLD)}, which is not in HEALTHORCH_ENCRYPTION_KEYS" in missing.stderr
        assert "3 of 6 stored secrets cannot be decrypted" in missing.stderr
        assert OLD not in missing.stdout + missing.stderr
        assert NEW not in missing.stdout + missing.stderr
        env = {"DATABASE_URL": urls["restored"], "HEALTHORCH_ENCRYPTION_KEYS": NEW}
        with serve_gunicorn(env) as (_, port):
            _each_organization_sees_its_own(port, scene)  # reading needs no secret
            refused = _patch_channel(port, scene["old"])
            assert refused.status_code == 503
            assert refused.headers["Content-Type"] == "application/json"
            body = refused.json()
            assert (body["error"], body["code"]) == ("Secret unavailable", "encryption_key_missing")
            assert key_id(OLD) in body["detail"]
            assert "HEALTHORCH_ENCRYPTION_KEYS" in body["detail"]
            assert _patch_channel(port, scene["new"]).status_code == 200  # NEW's secrets do

        # With the key put back, everything works.
        _verified(urls["restored"], scene)


# --- SQLite, the embedded default -------------------------------------------------------------


def test_the_embedded_database_is_copied_while_it_runs_and_the_copy_works(tmp_path):
    live, copy = tmp_path / "live.sqlite3", tmp_path / "backup.sqlite3"
    live_url, copy_url = f"sqlite:///{live}", f"sqlite:///{copy}"
    scene = _build_source(live_url)
    with serve_gunicorn({"DATABASE_URL": live_url, "HEALTHORCH_ENCRYPTION_KEYS": BOTH}) as (
        _,
        port,
    ):
        _each_organization_sees_its_own(port, scene)  # the server has the database open
        out = _ok(_manage(live_url, BOTH, "backup_sqlite", str(copy)))
        assert f"to {copy}" in out
        again = _manage(live_url, BOTH, "backup_sqlite", str(copy))
        assert again.returncode == 1  # never overwritten
        assert "exists" in again.stderr
    assert not list(tmp_path.glob(".*.part"))
    _migrated(copy_url, BOTH)
    _verified(copy_url, scene)
