"""The plan's per-minute API limit holds however many processes serve the API, and applies to
users (token or session) as it does to API keys."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from apps.plans.models import Limit
from apps.plans.services import limit_override_set
from apps.tenants.services import api_key_create
from tests.factories import MembershipFactory
from tests.support import serve_gunicorn

ROOT = Path(__file__).resolve().parents[2]
ORG = "/api/v1/organization"

# One process of the API: waits for the start line, then asks for `tries` requests' worth of
# the shared limit and prints how many it was granted.
_WORKER = """
import json, os, sys, time
from pathlib import Path
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
django.setup()
from rest_framework.exceptions import Throttled
from apps.plans.metering import check_rate
ident, go, tries = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
granted = 0
for _ in range(tries):
    try:
        check_rate(ident=ident, per_minute=60, now=6_000_030.0)
        granted += 1
    except Throttled:
        pass
print(json.dumps({"granted": granted}))
"""


def test_two_processes_share_one_limit(tmp_path):
    """Two separate Python processes on this run's cache (the SQLite file of the embedded
    default, or Redis when CACHE_URL says so) each try 60 requests against a 60/min limit: 60
    in all get through. With a per-process cache (CACHE_URL=locmemcache://) 120 did."""
    ident, go = f"test:{uuid.uuid4()}", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, ident, str(go), "60"],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    time.sleep(1)  # both importing Django; correctness does not depend on the overlap
    go.touch()
    granted = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
        granted.append(json.loads(out.decode().strip().splitlines()[-1])["granted"])
    assert sum(granted) == 60, granted


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["token", "session"])
def test_a_user_past_the_plans_rate_gets_429(how, client_for, owner, org, other_org):
    if how == "token":
        client = client_for(owner)
    else:
        client = APIClient()
        client.force_login(owner)
    with time_machine.travel("2026-03-01T10:00:05Z", tick=False):
        for n in range(60):
            assert client.get(ORG).status_code == 200, n
        throttled = client.get(ORG)
        assert throttled.status_code == 429
        assert throttled["Retry-After"] == "55"
        # Another member of the organization counts on their own.
        other = MembershipFactory(organization=org, role="member").user
        assert client_for(other).get(ORG).status_code == 200
        # The same person acting on their other organization has that organization's bucket.
        MembershipFactory(organization=other_org, user=owner, role="member")
        elsewhere = client.get(ORG, HTTP_X_ORGANIZATION=other_org.slug)
        assert elsewhere.status_code == 200
        assert elsewhere.json()["slug"] == other_org.slug


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_two_server_processes_answer_a_key_within_its_one_limit(org):
    """Two gunicorn servers on the test database and this run's cache, one key, a limit of
    10 a minute: 15 requests to each, 10 answered in all and the rest 429."""
    limit_override_set(
        org=org, limit=Limit.API_REQUESTS_PER_MINUTE, value=10, reason="test", actor=None
    )
    secret = api_key_create(org=org, name="ci", scopes=["read"]).secret
    env = {"DATABASE_URL": _database_url()}
    with serve_gunicorn(env) as (_, first), serve_gunicorn(env) as (_, second):
        for _ in range(3):  # the count is per minute: a burst must fall in one window
            if time.time() % 60 > 40:
                time.sleep(61 - time.time() % 60)
            window = int(time.time() // 60)
            codes = []
            for _ in range(15):
                for port in (first, second):
                    response = requests.get(
                        f"http://127.0.0.1:{port}/api/v1/organization",
                        headers={"X-API-Key": secret},
                        timeout=30,
                    )
                    codes.append(response.status_code)
            if int(time.time() // 60) == window:
                break
            time.sleep(61 - time.time() % 60)  # straddled two windows: again in a fresh one
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 20, codes
