import threading

import pytest
from django.db import connection, transaction

from apps.core.errors import UpgradeRequired
from apps.monitors import services
from apps.monitors.models import Monitor, MonitorStatus
from apps.plans.models import Limit
from apps.plans.services import organization_change_plan, reserve
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitors/"


def http_monitor(**overrides):
    body = {
        "name": "Homepage",
        "kind": "http",
        "interval_seconds": 300,
        "config": {"url": "http://127.0.0.1:9/health"},
    }
    return body | overrides


def make(org, n=1, **overrides):
    return [
        services.monitor_create(
            org=org,
            data={
                "name": f"m{i}",
                "kind": "http",
                "interval_seconds": 300,
                "config": {"url": "http://127.0.0.1:9/"},
                **overrides,
            },
        )
        for i in range(n)
    ]


def test_a_member_creates_an_http_monitor_with_defaults(client_for, member, org):
    response = client_for(member).post(URL, http_monitor(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "homepage"
    assert body["status"] == "unknown"
    assert body["config"]["method"] == "GET"
    assert body["config"]["expected_status"] == [[200, 399]]
    assert (body["failure_threshold"], body["recovery_threshold"], body["regions"]) == (
        2,
        1,
        ["default"],
    )
    assert body["next_check_at"] is not None
    assert Monitor.objects.get(pk=body["id"]).organization == org


def test_a_viewer_cannot_create_and_a_read_key_cannot_either(client_for, viewer, key_client, org):
    assert client_for(viewer).post(URL, http_monitor(), format="json").status_code == 403
    assert (
        key_client(org, scopes=["read"]).post(URL, http_monitor(), format="json").status_code == 403
    )
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "carrier-pigeon"}, "kind"),
        ({"config": {"url": "ftp://x"}}, "config"),
        ({"config": {}}, "config"),
        ({"interval_seconds": 5}, "interval_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"regions": ["mars"]}, "regions"),
        ({"quorum": 2}, "quorum"),
        ({"tags": ["Not A Slug"]}, "tags"),
        ({"config": {"url": "http://x.test", "expected_status": ["2xx"]}}, "config"),
        ({"config": {"url": "http://x.test", "assertions": ["status =="]}}, "config"),
        ({"color": "red"}, "color"),
    ],
)
def test_bad_input_is_400_naming_the_field(client_for, member, overrides, field):
    response = client_for(member).post(URL, http_monitor(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Monitor.objects.exists()


def test_an_assertion_error_points_at_the_token(client_for, member):
    body = http_monitor(
        config={"url": "http://x.test", "assertions": ["status == 200", "status ~ 3"]}
    )
    message = (
        client_for(member)
        .post(URL, body, format="json")
        .json()["fields"]["config"]["assertions"][0]
    )
    assert "assertion 1" in message
    assert "position 7" in message


def test_the_plan_interval_floor_is_402(client_for, member):
    response = client_for(member).post(URL, http_monitor(interval_seconds=60), format="json")
    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "min_interval_seconds",
        "current_plan": "free",
        "limit": 300,
    }


def test_the_monitor_limit_is_402_with_the_exact_body(client_for, member, org):
    make(org, 10)
    response = client_for(member).post(URL, http_monitor(), format="json")
    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "monitors",
        "current_plan": "free",
        "limit": 10,
        "used": 10,
    }
    assert Monitor.objects.count() == 10


def test_paused_monitors_do_not_take_a_slot_until_resumed(client_for, member, org):
    make(org, 10)
    client = client_for(member)
    paused = client.post(URL, http_monitor(paused=True), format="json")
    assert paused.status_code == 201
    assert paused.json()["status"] == "paused"
    resume = client.post(f"{URL}{paused.json()['id']}/resume/")
    assert resume.status_code == 402
    assert resume.json()["feature"] == "monitors"


def test_pause_and_resume(client_for, member, org):
    (monitor,) = make(org)
    client = client_for(member)
    assert client.post(f"{URL}{monitor.pk}/pause/").json()["status"] == "paused"
    resumed = client.post(f"{URL}{monitor.pk}/resume/").json()
    assert (resumed["paused"], resumed["status"]) == (False, "unknown")


def test_update_keeps_the_kind_and_validates_config(client_for, member, org):
    (monitor,) = make(org)
    client = client_for(member)
    assert client.patch(f"{URL}{monitor.pk}/", {"kind": "tcp"}, format="json").status_code == 400
    ok = client.patch(f"{URL}{monitor.pk}/", {"name": "Renamed", "tags": ["prod"]}, format="json")
    assert ok.status_code == 200
    assert (ok.json()["name"], ok.json()["tags"]) == ("Renamed", ["prod"])
    bad = client.patch(f"{URL}{monitor.pk}/", {"config": {"url": "gopher://x"}}, format="json")
    assert bad.status_code == 400
    monitor.refresh_from_db()
    assert monitor.config["url"] == "http://127.0.0.1:9/"


def test_filters_by_kind_status_tag_and_search(client_for, member, org):
    client = client_for(member)
    client.post(URL, http_monitor(name="API prod", tags=["prod", "api"]), format="json")
    client.post(URL, http_monitor(name="Web staging", tags=["staging"]), format="json")
    client.post(
        URL,
        {"name": "DB port", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 5432}},
        format="json",
    )

    def names(**params):
        return [m["name"] for m in client.get(URL, params).json()["results"]]

    assert names(kind="tcp") == ["DB port"]
    assert names(tag="prod") == ["API prod"]
    assert names(search="staging") == ["Web staging"]
    assert names(status="unknown") == ["API prod", "DB port", "Web staging"]
    assert names(region="default") == ["API prod", "DB port", "Web staging"]


def test_secrets_are_encrypted_and_never_returned(client_for, member, org):
    body = {
        "name": "db",
        "kind": "postgres",
        "config": {"dsn": "postgres://app:s3cret@127.0.0.1:5432/app"},
    }
    response = client_for(member).post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    out = response.json()
    assert "s3cret" not in str(out)
    assert out["config"]["dsn"] == "postgres://app@127.0.0.1:5432/app"
    assert out["has_secret"] is True
    monitor = Monitor.objects.get(pk=out["id"])
    assert "s3cret" not in monitor.secret
    assert services.secret_of(monitor) == "s3cret"
    from apps.monitors.engine import spec_for

    assert spec_for(monitor).config["dsn"] == "postgres://app:s3cret@127.0.0.1:5432/app"


def test_heartbeat_monitors_get_a_ping_url(client_for, member):
    body = {
        "name": "nightly backup",
        "kind": "heartbeat",
        "config": {"schedule": "0 3 * * *", "timezone": "Europe/Paris"},
    }
    out = client_for(member).post(URL, body, format="json").json()
    assert out["ping_url"].startswith("http://testserver/ping/")
    assert out["next_check_at"] is None  # no deadline before the first ping


@pytest.mark.parametrize(
    "config",
    [
        {"period_seconds": 60, "schedule": "* * * * *"},
        {},
        {"schedule": "every day"},
        {"period_seconds": 60, "timezone": "Mars/Olympus"},
    ],
)
def test_heartbeat_config_is_validated(client_for, member, config):
    body = {"name": "job", "kind": "heartbeat", "config": config}
    assert client_for(member).post(URL, body, format="json").status_code == 400


def test_downgrade_pauses_newest_first_and_raises_intervals(org):
    organization_change_plan(org=org, plan_code="pro", source="test")
    monitors = make(org, 12, interval_seconds=60)
    change = organization_change_plan(org=org, plan_code="free", source="test")
    paused = set(Monitor.objects.filter(paused=True).values_list("pk", flat=True))
    assert paused == {m.pk for m in monitors[-2:]}
    assert all(
        m.paused_reason.startswith("plan changed to free")
        for m in Monitor.objects.filter(paused=True)
    )
    assert set(Monitor.objects.values_list("interval_seconds", flat=True)) == {300}
    assert len(change.effects["monitors"]["paused_monitors"]) == 2
    assert Monitor.objects.count() == 12  # nothing deleted


def test_upgrading_restores_nothing_but_unblocks(client_for, member, org):
    make(org, 10)
    organization_change_plan(org=org, plan_code="pro", source="test")
    assert client_for(member).post(URL, http_monitor(), format="json").status_code == 201


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_racing_for_the_last_monitor_slot_only_one_wins():
    org = OrganizationFactory()
    make(org, 9)
    barrier = threading.Barrier(5)
    outcomes = []

    def create(i):
        barrier.wait()
        try:
            services.monitor_create(
                org=org,
                data={"name": f"race{i}", "kind": "http", "config": {"url": "http://127.0.0.1:9/"}},
            )
            outcomes.append("won")
        except UpgradeRequired:
            outcomes.append("402")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["402"] * 4 + ["won"]
    assert Monitor.objects.filter(organization=org).count() == 10


def test_reserve_counts_only_active_monitors(org):
    make(org, 9)
    make(org, 3, paused=True)
    with transaction.atomic():
        reserve(org=org, limit=Limit.MONITORS)
    assert Monitor.objects.filter(status=MonitorStatus.PAUSED).count() == 3


def test_a_monitors_config_can_be_sent_back_as_read(client_for, member):
    client = client_for(member)
    created = client.post(URL, http_monitor(), format="json").json()
    again = client.patch(f"{URL}{created['id']}/", {"config": created["config"]}, format="json")
    assert again.status_code == 200, again.json()
    assert again.json()["config"] == created["config"]


def test_unpausing_by_patch_takes_a_slot_like_resume_and_changes_nothing_when_full(
    client_for, member, org
):
    make(org, 10)
    client = client_for(member)
    paused = client.post(URL, http_monitor(name="spare", paused=True), format="json").json()
    response = client.patch(
        f"{URL}{paused['id']}/", {"paused": False, "name": "renamed"}, format="json"
    )
    assert response.status_code == 402
    assert response.json()["feature"] == "monitors"
    monitor = Monitor.objects.get(pk=paused["id"])
    assert (monitor.paused, monitor.name) == (True, "spare")  # nothing half-applied


def test_pausing_by_patch_sets_the_paused_status(client_for, member, org):
    (monitor,) = make(org)
    body = client_for(member).patch(f"{URL}{monitor.pk}/", {"paused": True}, format="json").json()
    assert (body["paused"], body["status"]) == (True, "paused")
