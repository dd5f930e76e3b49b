"""The report endpoints: formats, the plan gate, bad input, other tenants, query counts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from apps.incidents.models import Incident
from tests.reports.support import make_monitor, results, roll

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 12, 30, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def travel():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def may(pro_org):
    """Two monitors with results on May 4th: api 57/60 up, web 60/60 (tagged `edge`)."""
    api = make_monitor(pro_org, "api", tags=["core"])
    web = make_monitor(pro_org, "web", tags=["edge"])
    day = datetime(2026, 5, 4, tzinfo=UTC)
    results(api, day, [("up", 120.0)] * 57 + [("down", None, "timeout")] * 3)
    results(web, day, [("up", 40.0)] * 60)
    roll(day, day + timedelta(hours=1))
    return api, web


def test_the_monthly_report_as_json(client_for, member, may, travel):
    _api, _web = may
    body = client_for(member).get("/api/v1/reports/sla?period=monthly&start=2026-05-01").json()
    assert body["period"]["start"] == MAY.isoformat()
    assert body["period"]["label"] == "May 2026"
    rows = {r["monitor"]["name"]: r for r in body["monitors"]}
    assert rows["api"]["availability_pct"] == 95.0
    assert rows["web"]["availability_pct"] == 100.0
    assert body["summary"]["availability_pct"] == 97.5
    assert body["summary"]["sla"]["target_pct"] == 99.5
    assert rows["api"]["sla"]["met"] is False


def test_a_tag_or_a_monitor_narrows_the_report(client_for, member, may, travel):
    api, _web = may
    client = client_for(member)
    by_tag = client.get("/api/v1/reports/sla?start=2026-05&tag=edge").json()
    assert [r["monitor"]["name"] for r in by_tag["monitors"]] == ["web"]
    assert by_tag["scope"] == {"kind": "tag", "tag": "edge"}
    one = client.get(f"/api/v1/reports/sla/?start=2026-05&monitor={api.pk}").json()
    assert [r["monitor"]["name"] for r in one["monitors"]] == ["api"]


def test_a_formula_in_a_monitor_name_stays_text_in_the_csv(client_for, member, may, travel):
    api, _ = may
    api.name = "=HYPERLINK(1)"
    api.save(update_fields=["name"])
    response = client_for(member).get("/api/v1/reports/sla?start=2026-05&format=csv")
    names = [r["monitor"] for r in csv.DictReader(io.StringIO(response.content.decode()))]
    assert "'=HYPERLINK(1)" in names


def test_an_api_key_with_read_scope_gets_the_report(client, pro_org, may, travel):
    from apps.tenants import services as tenant_services

    key = tenant_services.api_key_create(org=pro_org, name="ci", scopes=["read"]).secret
    response = client.get("/api/v1/reports/sla?start=2026-05", HTTP_X_API_KEY=key)
    assert response.status_code == 200
    assert len(response.json()["monitors"]) == 2


def test_the_csv_parses_into_one_row_per_monitor(client_for, member, may, travel):
    response = client_for(member).get("/api/v1/reports/sla?start=2026-05&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_name = {r["monitor"]: r for r in rows}
    assert set(by_name) == {"api", "web"}
    assert float(by_name["api"]["availability_pct"]) == 95.0
    assert by_name["api"]["sla_met"] == "no"
    assert by_name["web"]["group"] == "edge"


def test_the_pdf_opens_and_its_text_holds_the_figures(client_for, member, may, travel):
    response = client_for(member).get("/api/v1/reports/sla?start=2026-05&format=pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    # A cover page, then one page per group (core, edge).
    assert len(reader.pages) == 3
    cover = reader.pages[0].extract_text()
    assert "May 2026" in cover
    assert "97.5 %" in cover
    assert "99.5 %" in cover
    core = reader.pages[1].extract_text()
    assert "Group: core" in core
    assert "api" in core
    assert "95" in core
    assert "NOT MET" in core
    assert "Group: edge" in reader.pages[2].extract_text()


def test_reports_need_the_sla_reports_feature(client_for, org, member):
    client = client_for(member)
    for path in ("/api/v1/reports/sla", "/api/v1/reports/sla?format=pdf", "/api/v1/reports/errors"):
        response = client.get(path)
        assert response.status_code == 402, path
        assert response.json() == {
            "error": "Upgrade Required",
            "feature": "sla_reports",
            "current_plan": "free",
        }


def test_the_summary_and_uptime_need_no_feature(client_for, org, member):
    monitor = make_monitor(org, interval=300)
    Incident.objects.create(
        organization=org,
        monitor=monitor,
        rule="service_down",
        title="down",
        severity="error",
        opened_at=NOW,
        last_seen_at=NOW,
    )
    client = client_for(member)
    body = client.get("/api/v1/reports/summary").json()
    assert body["total"] == 1
    assert body["active_incidents"] == 1
    for key in ("healthy", "unhealthy", "critical_unhealthy", "health_percentage"):
        assert key in body
    assert client.get(f"/api/v1/monitors/{monitor.pk}/uptime/").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=yearly", "period"),
        ("period=custom&start=2026-05-01", "end"),
        ("period=custom&end=2026-05-01", "start"),
        ("period=custom&start=2026-05-10&end=2026-05-01", "end"),
        ("period=custom&start=2024-01-01&end=2026-05-01", "end"),
        ("period=monthly&start=yesterday", "start"),
        ("period=monthly&start=2030-01", "start"),
        ("format=xml", "format"),
        ("monitor=not-a-uuid", "monitor"),
        ("monitor=7d5e1f7a-5b7c-4f2e-9a1e-1f2e3d4c5b6a&tag=x", "tag"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(
    client_for, member, pro_org, travel, query, field
):
    response = client_for(member).get(f"/api/v1/reports/sla?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert field in response.json()["fields"]


@pytest.mark.parametrize(
    "query",
    [
        "since=2026-01-01T00:00:00Z",
        "since=soon",
        "until=2026-05-01T00:00:00Z&since=2026-05-02T00:00:00Z",
    ],
)
def test_bad_error_windows_are_400s(client_for, member, pro_org, travel, query):
    response = client_for(member).get(f"/api/v1/reports/errors?{query}")
    assert response.status_code == 400
    assert response.json()["fields"]


def test_another_tenants_monitor_or_tag_is_not_found(client_for, outsider, other_org, may, travel):
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=other_org, plan_code="pro", source="test")
    api, _ = may
    client = client_for(outsider)
    for path in (
        f"/api/v1/reports/sla?monitor={api.pk}",
        f"/api/v1/reports/sla?monitor={api.pk}&format=pdf",
        f"/api/v1/reports/sla?monitor={api.pk}&format=csv",
        "/api/v1/reports/sla?tag=core",
        f"/api/v1/reports/errors?monitor={api.pk}",
        f"/api/v1/insights/{api.pk}",
        f"/api/v1/monitors/{api.pk}/uptime/",
    ):
        assert client.get(path).status_code == 404, path
    # Their own organization's report shows none of ours.
    body = client.get("/api/v1/reports/sla?start=2026-05").json()
    assert body["monitors"] == []
    assert body["organization"] == "globex"
    assert client.get("/api/v1/reports/errors").json()["groups"] == []


def test_the_error_analysis_groups_failures_with_first_and_last_seen(
    client_for, member, may, travel
):
    api, _ = may
    # The current hour is read live; the rolled-up May 4th from error rollups.
    results(api, NOW.replace(minute=0), [("down", None, "timeout")] * 2)
    body = client_for(member).get("/api/v1/reports/errors?since=2026-05-01T00:00:00Z").json()
    [group] = body["groups"]
    assert group["monitor"]["name"] == "api"
    assert (group["error_class"], group["message"], group["count"]) == (
        "timeout",
        "timeout happened",
        5,
    )
    assert group["first_seen"] == datetime(2026, 5, 4, 0, 57, tzinfo=UTC).isoformat()
    assert group["last_seen"] == datetime(2026, 6, 3, 12, 1, tzinfo=UTC).isoformat()


def test_the_uptime_endpoint_and_the_sla_report_agree(client_for, member, may):
    api, _ = may
    with time_machine.travel(datetime(2026, 5, 4, 12, tzinfo=UTC), tick=False):
        client = client_for(member)
        uptime = client.get(f"/api/v1/monitors/{api.pk}/uptime/").json()
        for window in ("24h", "7d"):
            report = client.get(f"/api/v1/reports/sla?period={window}&monitor={api.pk}").json()
            row = report["monitors"][0]
            assert uptime[window]["uptime_pct"] == row["availability_pct"] == 95.0
            assert uptime[window]["checks"] == row["checks"]["counted"] == 60
            assert uptime[window]["p95_ms"] == row["response_ms"]["p95"]


def _count_queries(client, path):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports/sla?period=7d&format=json",
        "/api/v1/reports/sla?period=7d&format=pdf",
        "/api/v1/reports/sla?period=monthly&format=csv",
        "/api/v1/reports/errors?since=2026-06-01T00:00:00Z",
        "/api/v1/reports/summary",
    ],
)
def test_report_queries_do_not_grow_with_the_number_of_monitors(
    client_for, member, pro_org, travel, path
):
    day = datetime(2026, 6, 2, tzinfo=UTC)
    client = client_for(member)

    def add(n):
        for i in range(n):
            m = make_monitor(pro_org, f"m{i}-{n}", tags=[f"t{i % 3}"])
            results(m, day, ["up"] * 5 + [("down", None, f"e{i}")])
            results(m, NOW.replace(minute=0), ["up"] * 3)  # the live hour
            Incident.objects.create(
                organization=pro_org,
                monitor=m,
                rule="service_down",
                title="x",
                severity="error",
                opened_at=day,
                last_seen_at=day,
                status="resolved",
                resolved_at=day + timedelta(minutes=5),
            )
        roll(day, day + timedelta(hours=1))

    add(2)
    _count_queries(client, path)  # warm the entitlements cache: it is not what is measured
    few = _count_queries(client, path)
    add(8)
    assert _count_queries(client, path) == few
    assert few <= 16
