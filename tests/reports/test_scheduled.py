"""Scheduled SLA reports reach the owners through a real SMTP server (aiosmtpd on 127.0.0.1),
once per period, except members who opted out; settings and the subscription API."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta

import pytest

from apps.reports import services
from apps.reports.models import ReportSettings
from apps.tenants.models import Role
from healthorch.schedules import BEAT_SCHEDULE
from tests.factories import MembershipFactory
from tests.reports.support import make_monitor, results, roll

pytestmark = pytest.mark.django_db
JUNE_2ND = datetime(2026, 6, 2, 6, 15, tzinfo=UTC)


def _mails(box):
    return [email.message_from_bytes(e.content) for e in box.envelopes]


def _text(mail) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


@pytest.fixture
def owners(pro_org, owner):
    second = MembershipFactory(organization=pro_org, role=Role.OWNER).user
    return owner, second


def test_owners_get_last_months_table_and_a_pdf_link_once(mailbox, pro_org, owners, member):
    monitor = make_monitor(pro_org, "checkout")
    day = datetime(2026, 5, 12, tzinfo=UTC)
    results(monitor, day, ["up"] * 54 + ["down"] * 6)
    roll(day, day + timedelta(hours=1))

    assert services.scheduled_reports_send(now=JUNE_2ND) == 2
    [mail] = _mails(mailbox)
    assert sorted(mailbox.envelopes[0].rcpt_tos) == sorted(u.email for u in owners)
    assert member.email not in mailbox.envelopes[0].rcpt_tos
    # A long subject arrives folded over two lines; unfolding removes only the line break.
    assert mail["Subject"].replace("\r\n", "").replace("\n", "") == (
        "[healthorch] SLA report for Acme, May 2026: 1 monitor(s) missed the target"
    )
    body = _text(mail)
    assert "1 monitor(s) missed their availability target: checkout." in body
    assert "checkout" in body
    assert "90.000" in body
    assert "NOT MET" in body
    assert (
        "http://healthorch.test/api/v1/reports/sla?period=monthly&start=2026-05-01"
        "&format=pdf" in body
    )
    assert any(p.get_content_type() == "text/html" for p in mail.walk())

    # The next day's run, or a second worker, sends nothing more for May.
    assert services.scheduled_reports_send(now=JUNE_2ND + timedelta(days=1)) == 0
    assert len(mailbox.envelopes) == 1
    assert ReportSettings.objects.get(organization=pro_org).last_sent_period.isoformat() == (
        "2026-05-01"
    )


def test_a_monitors_own_objective_decides_whether_it_met_its_sla(mailbox, pro_org, owners):
    from decimal import Decimal

    lenient = make_monitor(pro_org, "batch")
    lenient.slo_target_pct = Decimal("85")
    lenient.save(update_fields=["slo_target_pct"])
    day = datetime(2026, 5, 12, tzinfo=UTC)
    results(lenient, day, ["up"] * 54 + ["down"] * 6)  # 90 %: under the plan's, over its own
    roll(day, day + timedelta(hours=1))

    services.scheduled_reports_send(now=JUNE_2ND)
    [mail] = _mails(mailbox)
    assert mail["Subject"] == "[healthorch] SLA report for Acme, May 2026"
    assert "missed" not in _text(mail)


def test_an_owner_who_opted_out_gets_nothing(mailbox, client_for, pro_org, owners):
    first, second = owners
    client = client_for(first)
    assert client.delete("/api/v1/reports/subscription").json() == {"subscribed": False}
    assert client.get("/api/v1/reports/subscription").json() == {"subscribed": False}
    services.scheduled_reports_send(now=JUNE_2ND)
    assert mailbox.envelopes[0].rcpt_tos == [second.email]
    assert client.put("/api/v1/reports/subscription").json() == {"subscribed": True}


def test_weekly_reports_cover_the_last_iso_week_and_free_plans_get_none(
    mailbox, client_for, pro_org, owners, other_org, outsider
):
    response = client_for(owners[0]).patch(
        "/api/v1/reports/settings",
        {"schedule": "weekly", "timezone": "Europe/Berlin"},
        format="json",
    )
    assert response.status_code == 200, response.content
    services.scheduled_reports_send(now=JUNE_2ND)  # a Tuesday: last week is May 25-31
    subjects = [m["Subject"] for m in _mails(mailbox)]
    assert subjects == ["[healthorch] SLA report for Acme, week 22 of 2026"]  # Globex: free


def test_report_settings_reject_bad_values_and_need_an_owner_or_admin(
    client_for, pro_org, owner, member
):
    bad = client_for(owner).patch(
        "/api/v1/reports/settings", {"timezone": "Mars/Olympus", "schedule": "daily"}, format="json"
    )
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"timezone", "schedule"}
    denied = client_for(member).patch(
        "/api/v1/reports/settings", {"schedule": "off"}, format="json"
    )
    assert denied.status_code == 403
    assert client_for(member).get("/api/v1/reports/settings").json()["schedule"] == "monthly"


def test_outsiders_reach_none_of_the_report_endpoints(client_for, org, outsider):
    client = client_for(outsider, org_slug=org.slug)
    for path in (
        "/api/v1/reports/sla",
        "/api/v1/reports/summary",
        "/api/v1/reports/errors",
        "/api/v1/reports/settings",
        "/api/v1/reports/subscription",
    ):
        assert client.get(path).status_code == 404, path


def test_the_schedule_is_declared_with_the_others():
    entry = BEAT_SCHEDULE["send-scheduled-reports"]
    assert entry["task"] == "apps.reports.tasks.send_scheduled_reports"
