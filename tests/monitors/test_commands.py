"""The operator commands, run through call_command against real data (and, for runchecks, a
real HTTP server on 127.0.0.1)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.monitors import services
from apps.monitors.api.serializers import MonitorInput
from apps.monitors.models import CheckResult, Monitor, MonitorStatus
from apps.plans.services import organization_change_plan
from tests.monitors import targets

pytestmark = pytest.mark.django_db
http_target = targets.http_target


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def create(org, **body):
    """Through the API's validation, so stored settings are normalised as in production."""
    data = MonitorInput(data=body)
    data.is_valid(raise_exception=True)
    return services.monitor_create(org=org, data=dict(data.validated_data))


def http(org, url="http://127.0.0.1:9/", **extra):
    return create(
        org,
        **{"name": "web", "kind": "http", "timeout_seconds": 2, "config": {"url": url}, **extra},
    )


def row_of(output, name):
    return next(line.split() for line in output.splitlines() if line.startswith(name + " "))


# --- runchecks ---------------------------------------------------------------------------------


def test_runchecks_once_checks_active_monitors_of_the_org_and_prints_a_table(
    org, other_org, http_target
):
    http(org, http_target.route("/ok"), name="good")
    http(org, http_target.route("/broken", status=503), name="bad")
    http(org, http_target.route("/paused"), name="sleeping", paused=True)
    create(org, name="nightly", kind="heartbeat", config={"period_seconds": 3600})
    http(other_org, http_target.route("/theirs"), name="theirs")

    out, _ = run("runchecks", "--once", "--org", "acme")

    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "outcome", "ms", "error"]
    assert set(lines[1]) == {"-", " "}
    good, bad = row_of(out, "good"), row_of(out, "bad")
    assert good[:3] == ["good", "http", "up"]
    assert int(good[3]) >= 0
    assert bad[:3] == ["bad", "http", "down"]
    assert "status:" in bad
    for absent in ("sleeping", "nightly", "theirs"):
        assert absent not in out
    assert "2 checked: 1 down, 1 up" in out
    assert http_target.hits == {"/ok": 1, "/broken": 1}
    assert CheckResult.objects.count() == 2


def test_runchecks_json_lists_each_result(org, http_target):
    http(org, http_target.route("/ok"), name="good")
    http(org, http_target.route("/broken", status=503), name="bad")

    out, _ = run("runchecks", "--once", "--org", "acme", "--json")

    by_name = {item["name"]: item for item in json.loads(out)}
    assert by_name["good"]["outcome"] == "up"
    assert by_name["good"]["status_code"] == 200
    assert by_name["good"]["response_time_ms"] > 0
    assert (by_name["bad"]["outcome"], by_name["bad"]["status_code"]) == ("down", 503)
    assert by_name["bad"]["error_class"] == "status"
    assert by_name["bad"]["organization"] == "acme"


def test_runchecks_without_org_checks_every_organization_and_names_it(org, other_org, http_target):
    http(org, http_target.route("/a"), name="ours")
    http(other_org, http_target.route("/b"), name="theirs")

    out, _ = run("runchecks", "--once")

    assert out.splitlines()[0].split()[0] == "organization"
    assert row_of(out, "acme")[:4] == ["acme", "ours", "http", "up"]
    assert row_of(out, "globex")[:4] == ["globex", "theirs", "http", "up"]


def test_runchecks_with_nothing_to_check_says_so(org):
    assert run("runchecks", "--once", "--org", "acme")[0].strip() == "no active monitors"


def test_runchecks_for_an_unknown_org_exits_with_status_2(org):
    with pytest.raises(CommandError) as exc:
        run("runchecks", "--once", "--org", "nope")
    assert exc.value.returncode == 2
    assert "nope" in str(exc.value)


def test_runchecks_without_once_points_to_celery_beat(org):
    with pytest.raises(CommandError) as exc:
        run("runchecks")
    assert "Celery beat" in str(exc.value)
    assert "make run" in str(exc.value)


# --- healthreport ------------------------------------------------------------------------------


def _results(monitor, outcomes, *, ago):
    CheckResult.objects.bulk_create(
        CheckResult(
            monitor=monitor,
            organization=monitor.organization,
            checked_at=timezone.now() - ago,
            outcome=outcome,
        )
        for outcome in outcomes
    )


def test_healthreport_uptime_counts_the_last_24_hours_without_inconclusive_results(org):
    api = http(org, name="api", critical=True)
    http(org, name="idle")
    _results(api, ["up", "up", "up", "degraded", "down"], ago=timedelta(hours=1))
    _results(api, ["inconclusive", "inconclusive"], ago=timedelta(hours=2))
    _results(api, ["down"] * 5, ago=timedelta(hours=25))
    last_up = timezone.now() - timedelta(minutes=30)
    Monitor.objects.filter(pk=api.pk).update(
        status=MonitorStatus.DOWN, consecutive_failures=3, last_up_at=last_up
    )

    report = {row["name"]: row for row in json.loads(run("healthreport", "--json")[0])}

    assert report["api"] == {
        "organization": "acme",
        "slug": "api",
        "name": "api",
        "kind": "http",
        "status": "down",
        "critical": True,
        "last_up_at": last_up.isoformat(),
        "consecutive_failures": 3,
        "uptime_24h": 80.0,
        "results_24h": 5,
    }
    assert (report["idle"]["uptime_24h"], report["idle"]["last_up_at"]) == (None, None)
    assert report["idle"]["status"] == "unknown"

    table, _ = run("healthreport", "--org", "acme")
    assert table.splitlines()[0].split()[:3] == ["name", "kind", "status"]
    api_row = row_of(table, "api")
    assert api_row[:4] == ["api", "http", "down", "yes"]
    assert api_row[-2:] == ["3", "80.00%"]
    assert row_of(table, "idle")[-3:] == ["-", "0", "-"]


def test_healthreport_reflects_real_checks(org, other_org, http_target):
    http(org, http_target.route("/ok"), name="good")
    http(org, http_target.route("/broken", status=503), name="bad")
    http(other_org, http_target.route("/theirs"), name="theirs")
    run("runchecks", "--once", "--org", "acme")
    run("runchecks", "--once", "--org", "acme")

    report = {
        row["name"]: row for row in json.loads(run("healthreport", "--json", "--org", "acme")[0])
    }

    assert set(report) == {"good", "bad"}
    assert (report["good"]["status"], report["good"]["uptime_24h"]) == ("up", 100.0)
    assert report["good"]["last_up_at"] is not None
    assert (report["bad"]["status"], report["bad"]["consecutive_failures"]) == ("down", 2)
    assert (report["bad"]["uptime_24h"], report["bad"]["results_24h"]) == (0.0, 2)


# --- healthsummary -----------------------------------------------------------------------------


def _with_status(org, name, status, **extra):
    monitor = http(org, name=name, **extra)
    Monitor.objects.filter(pk=monitor.pk).update(status=status)
    return monitor


def test_healthsummary_counts_healthy_unhealthy_critical_paused_and_unknown(org, other_org):
    _with_status(org, "a", MonitorStatus.UP)
    _with_status(org, "b", MonitorStatus.DEGRADED)
    _with_status(org, "c", MonitorStatus.DOWN, critical=True)
    _with_status(org, "d", MonitorStatus.DOWN)
    http(org, name="e")
    http(org, name="f", paused=True)
    _with_status(other_org, "x", MonitorStatus.DOWN, critical=True)

    summary = json.loads(run("healthsummary", "--json", "--org", "acme")[0])

    assert summary == {
        "organization": "acme",
        "total": 6,
        "healthy": 2,
        "unhealthy": 2,
        "critical_unhealthy": 1,
        "paused": 1,
        "unknown": 1,
        "maintenance": 0,
        "health_percentage": 50.0,
    }
    everyone = json.loads(run("healthsummary", "--json")[0])
    assert (everyone["organization"], everyone["total"], everyone["critical_unhealthy"]) == (
        None,
        7,
        2,
    )

    table, _ = run("healthsummary", "--org", "acme")
    assert table.splitlines()[0].split() == ["organization", "acme", "monitors"]
    assert row_of(table, "critical")[-1] == "1"
    assert row_of(table, "health")[-1] == "50.00%"


def test_healthsummary_of_an_org_with_nothing_checked_yet_is_100_percent(org):
    http(org, name="new")
    summary = json.loads(run("healthsummary", "--json", "--org", "acme")[0])
    assert (summary["health_percentage"], summary["unknown"]) == (100.0, 1)


def test_healthreport_and_healthsummary_refuse_an_unknown_org(org):
    for command in ("healthreport", "healthsummary"):
        with pytest.raises(CommandError) as exc:
            run(command, "--org", "nope")
        assert exc.value.returncode == 2


# --- import_services ---------------------------------------------------------------------------


def services_file(tmp_path, **overrides):
    doc = {
        "check_interval_seconds": 300,
        "timeout_seconds": 10,
        "max_consecutive_failures": 5,
        "services": [
            {
                "name": "interpreter",
                "url": "http://127.0.0.1:5120/health",
                "critical": True,
                "expected_response_time": 2.0,
            },
            {"name": "Web Front", "url": "http://127.0.0.1:8080/"},
        ],
    } | overrides
    path = tmp_path / "services.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_import_services_creates_an_http_monitor_per_service(org, tmp_path):
    out, err = run("import_services", services_file(tmp_path), "--org", "acme")

    interpreter = Monitor.objects.get(organization=org, slug="interpreter")
    assert interpreter.kind == "http"
    assert interpreter.config["url"] == "http://127.0.0.1:5120/health"
    assert interpreter.config["method"] == "GET"
    assert (interpreter.interval_seconds, interpreter.timeout_seconds) == (300, 10)
    assert (interpreter.failure_threshold, interpreter.critical) == (5, True)
    assert interpreter.expected_response_time_ms == 2000
    front = Monitor.objects.get(organization=org, slug="web-front")
    assert (front.critical, front.expected_response_time_ms) == (False, None)
    assert "created 2 monitors, 0 channels and 0 healing policies in acme" in out
    assert "+ interpreter" in out
    assert err == ""


def test_import_services_warns_about_unknown_keys_and_imports_the_rest(org, tmp_path):
    path = services_file(
        tmp_path,
        owner="platform team",
        services=[{"name": "api", "url": "http://127.0.0.1:9/", "team": "core"}],
    )

    _, err = run("import_services", path, "--org", "acme")

    assert "warning: ignoring unknown key 'owner'" in err
    assert "warning: services[0]: ignoring unknown key 'team'" in err
    assert Monitor.objects.filter(organization=org, slug="api").exists()


def test_import_services_reports_invalid_entries_by_index_and_creates_nothing(org, tmp_path):
    path = services_file(
        tmp_path,
        services=[
            {"name": "fine", "url": "http://127.0.0.1:9/"},
            {"name": "ftp", "url": "ftp://127.0.0.1/file"},
            {"url": "http://127.0.0.1:9/"},
            {"name": "slow", "url": "http://127.0.0.1:9/", "expected_response_time": "fast"},
        ],
    )

    err = StringIO()
    with pytest.raises(CommandError, match="nothing was created"):
        call_command("import_services", path, "--org", "acme", stdout=StringIO(), stderr=err)

    lines = err.getvalue().splitlines()
    assert any(line.startswith("services[1].url: Only http and https") for line in lines)
    assert any(line.startswith("services[2].name: This field is required") for line in lines)
    assert any(line.startswith("services[3].expected_response_time:") for line in lines)
    assert not any(line.startswith("services[0]") for line in lines)
    assert not Monitor.objects.exists()


def test_import_services_refuses_an_interval_below_the_plan_minimum_and_creates_nothing(
    org, tmp_path
):
    path = services_file(tmp_path, check_interval_seconds=30)

    with pytest.raises(CommandError) as exc:
        run("import_services", path, "--org", "acme")

    message = str(exc.value)
    assert "Upgrade required" in message
    assert "every 300 s" in message
    assert "check_interval_seconds is 30" in message
    assert not Monitor.objects.exists()


def test_import_services_at_the_monitor_limit_creates_nothing(org, tmp_path):
    for i in range(9):
        http(org, name=f"existing {i}", interval_seconds=300)

    with pytest.raises(CommandError) as exc:
        run("import_services", services_file(tmp_path), "--org", "acme")

    assert "allows 10 monitors, 9 in use (2 more active monitors)" in str(exc.value)
    assert Monitor.objects.filter(organization=org).count() == 9


def test_import_services_with_a_short_interval_works_on_a_plan_that_allows_it(org, tmp_path):
    organization_change_plan(org=org, plan_code="business", source="test")
    run("import_services", services_file(tmp_path, check_interval_seconds=30), "--org", "acme")
    assert set(Monitor.objects.values_list("interval_seconds", flat=True)) == {30}


def test_importing_the_same_file_twice_names_the_existing_monitors_instead_of_copying(
    org, tmp_path
):
    path = services_file(tmp_path)
    run("import_services", path, "--org", "acme")

    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_services", path, "--org", "acme", stdout=StringIO(), stderr=err)

    assert "services[0].name: A monitor 'interpreter' exists already" in err.getvalue()
    assert Monitor.objects.count() == 2


# --- export_monitors / apply_monitors ----------------------------------------------------------


def test_export_prints_yaml_with_a_secrets_comment_and_never_a_password(org, other_org):
    http(org, name="web", tags=["prod"])
    create(
        org, name="db", kind="postgres", config={"dsn": "postgres://app:s3cret@127.0.0.1:5432/app"}
    )
    http(other_org, name="theirs")

    out, _ = run("export_monitors", "--org", "acme")

    assert out.startswith("#")
    assert "Secrets are not exported" in out
    assert "s3cret" not in out
    doc = yaml.safe_load(out)
    assert doc["version"] == 1
    assert [m["slug"] for m in doc["monitors"]] == ["db", "web"]
    assert list(doc["monitors"][1])[:4] == ["slug", "name", "kind", "config"]
    assert doc["monitors"][0]["config"]["dsn"] == "postgres://app@127.0.0.1:5432/app"
    assert doc["monitors"][1]["tags"] == ["prod"]
    assert run("export_monitors", "--org", "acme")[0] == out


def test_applying_an_exported_file_twice_changes_nothing(org, tmp_path):
    http(org, name="web")
    path = tmp_path / "monitors.yaml"
    path.write_text(run("export_monitors", "--org", "acme")[0])
    before = Monitor.objects.get(slug="web").updated_at

    first, _ = run("apply_monitors", str(path), "--org", "acme")
    second, _ = run("apply_monitors", str(path), "--org", "acme")

    assert first.strip() == second.strip() == "no changes in acme: 1 unchanged"
    assert Monitor.objects.get(slug="web").updated_at == before


def test_apply_dry_run_prints_the_plan_and_changes_nothing(org, tmp_path):
    http(org, name="web")
    http(org, name="old")
    doc = {
        "version": 1,
        "monitors": [
            {
                "slug": "web",
                "name": "web",
                "kind": "http",
                "timeout_seconds": 5,
                "config": {"url": "http://127.0.0.1:9/"},
                "tags": ["prod"],
            },
            {
                "slug": "new",
                "name": "new",
                "kind": "tcp",
                "config": {"host": "127.0.0.1", "port": 5432},
            },
        ],
    }
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump(doc))

    out, _ = run("apply_monitors", str(path), "--org", "acme", "--prune", "--dry-run")

    assert out.splitlines() == [
        "+ new",
        "~ web (tags, timeout_seconds)",
        "- old",
        "dry run, nothing changed: 1 to create, 1 to update, 1 to delete, 0 unchanged",
    ]
    assert set(Monitor.objects.values_list("slug", flat=True)) == {"web", "old"}
    assert Monitor.objects.get(slug="web").tags == []

    out, _ = run("apply_monitors", str(path), "--org", "acme", "--prune")
    assert out.splitlines()[-1] == "applied to acme: 1 created, 1 updated, 1 deleted, 0 unchanged"
    assert set(Monitor.objects.values_list("slug", flat=True)) == {"web", "new"}
    assert Monitor.objects.get(slug="web").tags == ["prod"]


def test_apply_reports_every_invalid_entry_by_index_and_field_and_changes_nothing(org, tmp_path):
    path = tmp_path / "monitors.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "monitors": [
                    {
                        "slug": "ok",
                        "name": "ok",
                        "kind": "http",
                        "config": {"url": "http://127.0.0.1:9/"},
                    },
                    {"slug": "bad", "name": "bad", "kind": "http", "config": {"url": "ftp://x"}},
                    {"name": "no slug", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 0}},
                ],
            }
        )
    )

    err = StringIO()
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("apply_monitors", str(path), "--org", "acme", stdout=StringIO(), stderr=err)

    lines = err.getvalue().splitlines()
    assert any(line.startswith("monitors[1].config.url:") for line in lines)
    assert any(line.startswith("monitors[2].slug: Required") for line in lines)
    assert any(line.startswith("monitors[2].config.port:") for line in lines)
    assert not Monitor.objects.exists()


def test_apply_refuses_a_file_that_is_not_yaml(org, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("monitors: [unclosed")
    with pytest.raises(CommandError, match="not valid YAML"):
        run("apply_monitors", str(path), "--org", "acme")


def test_apply_over_the_plan_limit_names_the_entry_and_changes_nothing(org, tmp_path):
    doc = {
        "version": 1,
        "monitors": [
            {
                "slug": "fast",
                "name": "fast",
                "kind": "http",
                "interval_seconds": 60,
                "config": {"url": "http://127.0.0.1:9/"},
            }
        ],
    }
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump(doc))

    with pytest.raises(CommandError) as exc:
        run("apply_monitors", str(path), "--org", "acme")

    assert "every 300 s" in str(exc.value)
    assert "monitors[0] (fast)" in str(exc.value)
    assert not Monitor.objects.exists()
