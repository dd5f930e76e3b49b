"""The error_signature rule: off until turned on; a new signature or a signature's rate jumping
against its own day before opens one incident per signature, notified with the template and
the counts; quiet signatures resolve; validation answers clear 400s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents.errorsig import MIN_COUNT, error_signature_sweep
from apps.incidents.models import AlertRule, Incident, IncidentStatus, RuleKind
from apps.telemetry import services as telemetry
from apps.telemetry.storage import logs_write
from tests.factories import make_monitor
from tests.incidents.conftest import notified

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(minute=30, second=0, microsecond=0)
KIND = RuleKind.ERROR_SIGNATURE


def write(org, source, message, at, n=1):
    logs_write(
        org_id=org.pk,
        rows=[(at, source, "error", message.format(i=i), {}, "", "") for i in range(n)],
    )


def mine(at=NOW):
    telemetry.error_signatures_mine(now=at)


def enable(client, **fields):
    response = client.patch(
        "/api/v1/alert-rules/error_signature/", {"enabled": True, **fields}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_rule_is_off_by_default_and_opens_nothing(org, client_for, owner):
    write(org, "api", "brand new failure {i}", NOW, n=50)
    mine()
    assert error_signature_sweep(now=NOW)["opened"] == 0
    rule = client_for(owner).get("/api/v1/alert-rules/error_signature/").json()
    assert rule == {
        "kind": "error_signature",
        "enabled": False,
        "threshold": 10.0,
        "threshold_meaning": "times the signature's hourly mean over the day before",
        "window_seconds": 300,
        "severity": "warning",
        "customized": False,
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"threshold": 1}, "threshold"),
        ({"threshold": 5000}, "threshold"),
        ({"window_seconds": 30}, "window_seconds"),
        ({"window_seconds": 7200}, "window_seconds"),
        ({"window_seconds": 90}, "window_seconds"),
        ({"severity": "loud"}, "severity"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(client_for, owner, payload, field):
    response = client_for(owner).patch(
        "/api/v1/alert-rules/error_signature/", payload, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_a_new_signature_opens_one_incident_naming_template_and_count(
    org, client_for, owner, published
):
    enable(client_for(owner))
    make_monitor(org, "checkout")
    write(org, "checkout", "card {i} declined by issuer", NOW - timedelta(minutes=1), n=3)
    mine()
    assert error_signature_sweep(now=NOW)["opened"] == 1
    incident = Incident.objects.get(rule=KIND)
    assert incident.title == ("New error in checkout: card <NUM> declined by issuer (3 line(s))")
    assert incident.cause["reason"] == "new"
    assert incident.cause["template"] == "card <NUM> declined by issuer"
    assert incident.cause["monitor"]  # the monitor whose slug is the source
    assert incident.monitor_id is None
    assert notified(published) == [("error_signature", "opened")]
    # Still there a minute later: the same incident, nothing new notified.
    write(org, "checkout", "card {i} declined by issuer", NOW, n=2)
    mine(NOW + timedelta(minutes=1))
    assert error_signature_sweep(now=NOW + timedelta(minutes=1))["opened"] == 0
    assert Incident.objects.filter(rule=KIND).count() == 1
    # A second signature opens its own incident, once: the sweep after it opens nothing.
    write(org, "checkout", "another kind {i} of failure", NOW, n=1)
    mine(NOW + timedelta(minutes=1))
    assert error_signature_sweep(now=NOW + timedelta(minutes=1))["opened"] == 1
    assert error_signature_sweep(now=NOW + timedelta(minutes=1))["opened"] == 0
    assert Incident.objects.filter(rule=KIND).count() == 2


def test_a_rate_jump_against_the_day_before_opens_and_quiet_resolves(
    org, client_for, owner, published
):
    # A steady signature: 2 lines an hour over the day before, mined long ago (not new).
    for h in range(1, 25):
        write(org, "api", "db timeout after {i} ms", NOW - timedelta(hours=h), n=2)
    mine(NOW - timedelta(hours=1))
    enable(client_for(owner))
    # A normal five minutes: 1 line. Nothing opens.
    write(org, "api", "db timeout after {i} ms", NOW - timedelta(minutes=3))
    mine()
    assert error_signature_sweep(now=NOW)["opened"] == 0
    # Now MIN_COUNT + 5 lines in five minutes: 180/h against 2/h.
    n = MIN_COUNT + 5
    write(org, "api", "db timeout after {i} ms", NOW + timedelta(minutes=2), n=n)
    at = NOW + timedelta(minutes=3)
    mine(at)
    assert error_signature_sweep(now=at)["opened"] == 1
    incident = Incident.objects.get(rule=KIND)
    assert incident.cause["reason"] == "rate"
    assert incident.cause["count"] == n
    assert incident.title.startswith(
        f"Error rate jump in api: db timeout after <NUM> ms ({n} lines in 5 min"
    )
    # Still jumping the next minute: folded, not opened again.
    assert error_signature_sweep(now=at + timedelta(minutes=1))["opened"] == 0
    assert Incident.objects.get(pk=incident.pk).occurrences == 2
    # Quiet for half an hour: resolved, and the recovery is notified.
    later = NOW + timedelta(minutes=40)
    assert error_signature_sweep(now=later)["resolved"] == 1
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.RESOLVED
    assert notified(published)[-1] == ("error_signature", "resolved")


def test_a_higher_threshold_does_not_fire_below_it(org, client_for, owner):
    for h in range(1, 25):
        write(org, "api", "db timeout after {i} ms", NOW - timedelta(hours=h), n=2)
    mine(NOW - timedelta(hours=1))
    enable(client_for(owner), threshold=200)
    write(org, "api", "db timeout after {i} ms", NOW + timedelta(minutes=2), n=MIN_COUNT + 5)
    mine(NOW + timedelta(minutes=3))
    assert error_signature_sweep(now=NOW + timedelta(minutes=3))["opened"] == 0


def test_disabling_the_rule_resolves_what_it_opened(org, client_for, owner):
    client = client_for(owner)
    enable(client)
    write(org, "api", "kaboom {i}", NOW)
    mine()
    error_signature_sweep(now=NOW)
    client.patch("/api/v1/alert-rules/error_signature/", {"enabled": False}, format="json")
    assert error_signature_sweep(now=NOW + timedelta(minutes=1))["resolved"] == 1
    assert AlertRule.objects.get(organization=org, kind=KIND).enabled is False


def test_one_organizations_rule_never_opens_on_anothers_logs(org, other_org, client_for, owner):
    enable(client_for(owner))
    write(other_org, "api", "their failure {i}", NOW, n=30)
    mine()
    assert error_signature_sweep(now=NOW)["opened"] == 0
    assert not Incident.objects.exists()


def test_one_sweep_reads_a_fixed_number_of_times(
    org, client_for, owner, django_assert_max_num_queries
):
    enable(client_for(owner))
    for i in range(15):
        write(org, f"svc{i}", f"failure kind{i} {{i}}", NOW, n=MIN_COUNT + 1)
    mine()
    # The sweep's reads and writes, the alerts listener's (organizations, channels) included.
    with django_assert_max_num_queries(16):
        result = error_signature_sweep(now=NOW)
    assert result["opened"] == 15
