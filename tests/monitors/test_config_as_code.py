"""Configuration as code: export, plan and apply documents, and the apply API."""

import pytest
import yaml
from cryptography.fernet import Fernet
from rest_framework.exceptions import ValidationError

from apps.core.errors import UpgradeRequired
from apps.monitors import services
from apps.monitors.api.serializers import MonitorInput
from apps.monitors.config_as_code import document_apply, document_export, document_plan
from apps.monitors.models import Monitor, MonitorStatus

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitors/apply/"


def create(org, **body):
    """Through the API's validation, so stored settings are normalised as in production."""
    data = MonitorInput(data=body)
    data.is_valid(raise_exception=True)
    return services.monitor_create(org=org, data=dict(data.validated_data))


def entry(slug, **fields):
    return {
        "slug": slug,
        "name": slug,
        "kind": "http",
        "config": {"url": f"http://127.0.0.1:9/{slug}"},
        **fields,
    }


def document(*entries):
    return {"version": 1, "monitors": list(entries)}


def through_yaml(doc):
    return yaml.safe_load(yaml.safe_dump(doc, sort_keys=False))


def a_monitor_of_every_kind(org):
    create(
        org,
        name="Web",
        kind="http",
        config={
            "url": "http://127.0.0.1:9/health",
            "method": "POST",
            "headers": {"X-Probe": "1"},
            "expected_status": [200, "300-302"],
            "assertions": ['body contains "ok"'],
        },
        tags=["prod", "web"],
        critical=True,
        expected_response_time_ms=1500,
    )
    create(org, name="Port", kind="tcp", config={"host": "127.0.0.1", "port": 22})
    create(org, name="Cert", kind="tls", config={"host": "127.0.0.1"}, paused=True)
    create(org, name="Dns", kind="dns", config={"name": "example.test", "expected": ["1.2.3.4"]})
    create(
        org, name="Db", kind="postgres", config={"dsn": "postgres://app:s3cret@127.0.0.1:5432/app"}
    )
    create(org, name="Cache", kind="redis", config={"url": "redis://:hunter2@127.0.0.1:6379/0"})
    create(org, name="Nightly", kind="heartbeat", config={"schedule": "0 3 * * *"})
    create(
        org,
        name="Load",
        kind="metric",
        config={"source": "api-1", "metric": "cpu", "operator": ">", "threshold": 0.9},
    )


def test_an_exported_document_applies_as_a_no_op_for_every_kind(org):
    a_monitor_of_every_kind(org)
    before = {m.slug: m.updated_at for m in Monitor.objects.all()}

    doc = through_yaml(document_export(org))
    first = document_apply(org, doc).as_dict()
    second = document_apply(org, through_yaml(document_export(org))).as_dict()

    for result in (first, second):
        assert (result["created"], result["updated"], result["deleted"]) == ([], [], [])
        assert sorted(result["unchanged"]) == sorted(before)
    assert {m.slug: m.updated_at for m in Monitor.objects.all()} == before


def test_the_export_carries_no_password_and_applying_it_keeps_the_stored_one(org):
    a_monitor_of_every_kind(org)
    text = yaml.safe_dump(document_export(org))
    assert "s3cret" not in text
    assert "hunter2" not in text

    document_apply(org, yaml.safe_load(text))

    assert services.secret_of(Monitor.objects.get(slug="db")) == "s3cret"
    assert services.secret_of(Monitor.objects.get(slug="cache")) == "hunter2"


def test_a_new_password_in_the_document_is_an_update_once(org):
    create(org, name="db", kind="postgres", config={"dsn": "postgres://app:old@127.0.0.1/app"})
    doc = document(entry("db", kind="postgres", config={"dsn": "postgres://app:new@127.0.0.1/app"}))

    assert document_apply(org, doc).as_dict()["updated"] == ["db"]
    assert document_apply(org, doc).as_dict()["unchanged"] == ["db"]
    assert services.secret_of(Monitor.objects.get(slug="db")) == "new"


def test_applying_a_new_document_twice_creates_then_reports_everything_unchanged(org):
    doc = document(entry("web"), entry("api", tags=["prod"], interval_seconds=600))

    first = document_apply(org, doc).as_dict()
    second = document_apply(org, doc).as_dict()

    assert first == {
        "created": ["web", "api"],
        "updated": [],
        "deleted": [],
        "unchanged": [],
        "dry_run": False,
    }
    assert second["unchanged"] == ["web", "api"]
    assert second["created"] == second["updated"] == []
    assert Monitor.objects.get(slug="api").interval_seconds == 600


def test_a_field_left_out_returns_to_its_default(org):
    document_apply(org, document(entry("web", tags=["prod"], expected_response_time_ms=900)))

    plan = document_plan(org, document(entry("web")))

    assert [(u.slug, sorted(u.changes)) for u in plan.updates] == [
        ("web", ["expected_response_time_ms", "tags"])
    ]


def test_a_dry_run_changes_nothing_but_reports_what_would_change(org):
    create(org, name="old", kind="http", config={"url": "http://127.0.0.1:9/"})
    create(org, name="web", kind="http", config={"url": "http://127.0.0.1:9/"})
    doc = document(entry("web"), entry("new"))

    result = document_apply(org, doc, prune=True, dry_run=True).as_dict()

    assert result == {
        "created": ["new"],
        "updated": ["web"],
        "deleted": ["old"],
        "unchanged": [],
        "dry_run": True,
    }
    assert set(Monitor.objects.values_list("slug", flat=True)) == {"old", "web"}
    assert Monitor.objects.get(slug="web").config["url"] == "http://127.0.0.1:9/"


def test_a_dry_run_over_the_plan_limit_is_refused_like_a_real_run(org):
    for i in range(10):
        create(org, name=f"m{i}", kind="http", config={"url": "http://127.0.0.1:9/"})

    with pytest.raises(UpgradeRequired) as exc:
        document_apply(org, document(entry("one-more")), dry_run=True)

    assert (exc.value.limit, exc.value.used) == (10, 10)


def test_prune_deletes_only_this_organizations_monitors_missing_from_the_document(org, other_org):
    create(org, name="keep", kind="http", config={"url": "http://127.0.0.1:9/"})
    create(org, name="extra", kind="http", config={"url": "http://127.0.0.1:9/"})
    create(other_org, name="extra", kind="http", config={"url": "http://127.0.0.1:9/"})
    create(other_org, name="theirs", kind="http", config={"url": "http://127.0.0.1:9/"})
    doc = through_yaml(document_export(org))
    doc["monitors"] = [m for m in doc["monitors"] if m["slug"] == "keep"]

    result = document_apply(org, doc, prune=True).as_dict()

    assert (result["deleted"], result["unchanged"]) == (["extra"], ["keep"])
    assert list(Monitor.objects.filter(organization=org).values_list("slug", flat=True)) == ["keep"]
    assert set(Monitor.objects.filter(organization=other_org).values_list("slug", flat=True)) == {
        "extra",
        "theirs",
    }


def test_without_prune_monitors_missing_from_the_document_stay(org):
    create(org, name="extra", kind="http", config={"url": "http://127.0.0.1:9/"})
    result = document_apply(org, document(entry("web"))).as_dict()
    assert (result["created"], result["deleted"]) == (["web"], [])
    assert Monitor.objects.filter(slug="extra").exists()


def test_swapping_monitors_at_the_plan_limit_frees_slots_before_taking_them(org):
    for i in range(10):
        create(org, name=f"m{i}", kind="http", config={"url": "http://127.0.0.1:9/"})
    doc = through_yaml(document_export(org))
    doc["monitors"] = [*doc["monitors"][1:], entry("replacement")]

    result = document_apply(org, doc, prune=True).as_dict()

    assert (result["created"], result["deleted"]) == (["replacement"], ["m0"])
    assert Monitor.objects.filter(organization=org, paused=False).count() == 10


def test_pausing_and_resuming_through_the_document_use_the_pause_rules(org):
    document_apply(org, document(entry("web")))

    document_apply(org, document(entry("web", paused=True)))
    web = Monitor.objects.get(slug="web")
    assert (web.paused, web.status) == (True, MonitorStatus.PAUSED)
    assert web.paused_reason == "paused by configuration as code"

    document_apply(org, document(entry("web", paused=False)))
    web.refresh_from_db()
    assert (web.paused, web.status, web.paused_reason) == (False, MonitorStatus.UNKNOWN, "")


def test_errors_name_the_entry_and_field_and_nothing_is_changed(org):
    create(org, name="port", kind="tcp", config={"host": "127.0.0.1", "port": 22})
    doc = document(
        entry("web"),
        entry("bad", config={"url": "ftp://127.0.0.1/"}),
        entry("web", name="again"),
        {"name": "no slug", "kind": "http", "config": {"url": "http://127.0.0.1:9/"}},
        entry("port"),
        entry("typo", colour="red"),
        "not a mapping",
    )

    with pytest.raises(ValidationError) as exc:
        document_apply(org, doc, prune=True)

    fields = exc.value.detail
    assert "url" in fields["monitors[1].config"]
    assert "Also used by monitors[0]." in fields["monitors[2].slug"]
    assert fields["monitors[3].slug"][0].startswith("Required")
    assert "a kind cannot change" in fields["monitors[4].kind"][0]
    assert fields["monitors[5].colour"] == ["Unknown or read-only field."]
    assert "monitors[6]" in fields
    assert "monitors[0].slug" not in fields
    assert list(Monitor.objects.values_list("slug", flat=True)) == ["port"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "document"),
        ({"monitors": []}, "version"),
        ({"version": 2, "monitors": []}, "version"),
        ({"version": 1}, "monitors"),
        ({"version": 1, "monitors": [], "extra": 1}, "extra"),
    ],
)
def test_a_malformed_document_is_refused_naming_what_is_wrong(org, doc, field):
    with pytest.raises(ValidationError) as exc:
        document_plan(org, doc)
    assert field in exc.value.detail


# --- The API ---------------------------------------------------------------------------------


def test_a_member_applies_a_document_through_the_api(client_for, member, org):
    client = client_for(member)
    doc = document(entry("web"), entry("api", critical=True))

    first = client.post(URL, doc, format="json")
    second = client.post(URL, doc, format="json")

    assert first.status_code == 200, first.json()
    assert first.json() == {
        "created": ["web", "api"],
        "updated": [],
        "deleted": [],
        "unchanged": [],
        "dry_run": False,
    }
    assert second.json()["unchanged"] == ["web", "api"]
    assert Monitor.objects.get(slug="api").organization == org


def test_the_documented_path_without_a_trailing_slash_applies_too(client_for, member, org):
    response = client_for(member).post(
        "/api/v1/monitors/apply", document(entry("web")), format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == ["web"]


def test_the_api_takes_prune_and_dry_run_as_query_parameters(client_for, member, org):
    create(org, name="old", kind="http", config={"url": "http://127.0.0.1:9/"})
    client = client_for(member)

    dry = client.post(f"{URL}?prune=true&dry_run=true", document(entry("web")), format="json")
    assert dry.status_code == 200
    assert dry.json() == {
        "created": ["web"],
        "updated": [],
        "deleted": ["old"],
        "unchanged": [],
        "dry_run": True,
    }
    assert list(Monitor.objects.values_list("slug", flat=True)) == ["old"]

    real = client.post(f"{URL}?prune=1", document(entry("web")), format="json")
    assert (real.json()["deleted"], real.json()["dry_run"]) == (["old"], False)
    assert list(Monitor.objects.values_list("slug", flat=True)) == ["web"]


def test_an_invalid_document_is_400_naming_the_entry_and_field(client_for, member):
    doc = document(entry("web"), entry("bad", config={"url": "ftp://127.0.0.1/"}))

    response = client_for(member).post(URL, doc, format="json")

    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "url" in fields["monitors[1].config"]
    assert list(fields) == ["monitors[1].config"]
    assert not Monitor.objects.exists()


def test_a_bad_flag_is_400(client_for, member):
    response = client_for(member).post(f"{URL}?prune=maybe", document(), format="json")
    assert response.status_code == 400
    assert "prune" in response.json()["fields"]


def test_the_plan_limit_is_402_with_the_exact_body_and_nothing_changes(client_for, member, org):
    for i in range(10):
        create(org, name=f"m{i}", kind="http", config={"url": "http://127.0.0.1:9/"})

    response = client_for(member).post(URL, document(entry("one-more")), format="json")

    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "monitors",
        "current_plan": "free",
        "limit": 10,
        "used": 10,
    }
    assert Monitor.objects.count() == 10


def test_an_interval_below_the_plan_minimum_is_402(client_for, member):
    response = client_for(member).post(
        URL, document(entry("fast", interval_seconds=60)), format="json"
    )
    assert response.status_code == 402
    assert response.json()["feature"] == "min_interval_seconds"
    assert not Monitor.objects.exists()


def test_a_viewer_and_a_read_key_cannot_apply(client_for, viewer, key_client, org):
    doc = document(entry("web"))
    assert client_for(viewer).post(URL, doc, format="json").status_code == 403
    assert key_client(org, scopes=["read"]).post(URL, doc, format="json").status_code == 403
    assert key_client(org).post(URL, doc, format="json").status_code == 200


def test_an_outsider_applies_only_to_their_own_organization(client_for, outsider, org, other_org):
    ours = create(org, name="web", kind="http", config={"url": "http://127.0.0.1:9/ours"})
    create(org, name="api", kind="http", config={"url": "http://127.0.0.1:9/"})
    doc = document(entry("web", config={"url": "http://127.0.0.1:9/theirs"}))
    client = client_for(outsider)

    response = client.post(f"{URL}?prune=true", doc, format="json")

    assert response.json()["created"] == ["web"]
    assert response.json()["deleted"] == []
    theirs = Monitor.objects.get(organization=other_org, slug="web")
    assert theirs.config["url"] == "http://127.0.0.1:9/theirs"
    ours.refresh_from_db()
    assert ours.config["url"] == "http://127.0.0.1:9/ours"
    assert Monitor.objects.filter(organization=org).count() == 2

    foreign = client_for(outsider, org_slug="acme").post(URL, doc, format="json")
    assert foreign.status_code == 404
    assert Monitor.objects.filter(organization=org).count() == 2


def test_a_numeric_slug_in_yaml_names_the_same_monitor_on_every_apply(org):
    doc = yaml.safe_load(
        "version: 1\nmonitors:\n- {slug: 2024, name: launch, kind: tcp, config: {host: 127.0.0.1, port: 443}}\n"
    )

    assert document_apply(org, doc, prune=True).as_dict()["created"] == ["2024"]
    again = document_apply(org, doc, prune=True).as_dict()

    assert (again["unchanged"], again["deleted"]) == (["2024"], [])


def test_a_password_whose_key_is_lost_is_replaced_by_the_document(org, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.HEALTHORCH_ENCRYPTION_KEYS = [old]
    create(org, name="db", kind="postgres", config={"dsn": "postgres://app:old@127.0.0.1/app"})
    settings.HEALTHORCH_ENCRYPTION_KEYS = [new]  # restored without the old key
    doc = document(entry("db", kind="postgres", config={"dsn": "postgres://app:new@127.0.0.1/app"}))

    assert document_apply(org, doc).as_dict()["updated"] == ["db"]
    assert services.secret_of(Monitor.objects.get(slug="db")) == "new"
