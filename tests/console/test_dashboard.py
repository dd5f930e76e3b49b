"""The console's index: operators see the platform's health, members only their organization's."""

from __future__ import annotations

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.console import queues
from apps.tenants.models import Role
from tests.console import support
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _dashboard(client) -> str:
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def test_an_operator_sees_platform_health(org, other_org):
    down = support.monitors(org, 2, status="down", prefix="down")
    support.monitors(other_org, 3, status="up")
    support.incident(org, monitor=down[0], severity="critical")
    support.incident(other_org, severity="warning")
    support.notification(org, status="dead")
    support.results(down[0], 10)
    figures = support.operator_client().get("/admin/").context["dashboard"]
    assert figures["scope"] == "platform"
    assert figures["organizations"] == 2
    assert figures["monitors"]["down"] == 2
    assert figures["monitors"]["up"] == 3
    assert figures["incidents"]["critical"] == 1
    assert figures["incidents"]["warning"] == 1
    assert figures["notifications"]["dead"] == 1
    assert figures["checks_per_minute"] == 2.0  # 10 results in the last 5 minutes
    page = _dashboard(support.operator_client())
    assert "Platform health" in page
    assert "Scheduler lag" in page
    assert "Celery queues" in page


def test_the_down_monitors_get_a_sparkline_and_uptime_bars_from_their_rollups(org):
    (api,) = support.monitors(org, 1, status="down", prefix="checkout")
    support.monitors(org, 20, status="up")
    support.rollups(api, down_days=3)
    client = support.operator_client()
    rows = client.get("/admin/").context["dashboard"]["charts"]
    assert rows[0]["monitor"] == api  # the down one first
    assert rows[0]["last_ms"] == 30  # the current hour's average
    # 3 of 90 days down (89 daily rollups and today from its hours)
    assert rows[0]["uptime"] == pytest.approx(100 * 87 / 90, abs=0.01)
    page = _dashboard(client)
    assert 'class="spark"' in page
    assert page.count("<rect") >= 90
    assert "#c62828" in page  # the red days


def test_the_dashboard_costs_the_same_queries_with_ten_times_the_rows(org, other_org):
    client = support.operator_client()
    small = support.monitors(org, 3, status="down")
    for m in small:
        support.rollups(m, hours=3, days=3)
        support.incident(org, monitor=m)
    client.get("/admin/")  # session and caches warm
    with CaptureQueriesContext(connection) as before:
        _dashboard(client)
    big = support.monitors(other_org, 30, status="degraded")
    for m in big:
        support.rollups(m, hours=24, days=90)
        support.results(m, 20)
        support.incident(other_org, monitor=m, severity="error")
        support.notification(other_org, status="failed")
    with CaptureQueriesContext(connection) as after:
        _dashboard(client)
    assert len(after) == len(before)
    assert len(after) <= 16  # session, user, 10 figures, the index's own


def test_a_member_sees_only_their_organizations_figures(member, org, other_org):
    support.monitors(org, 1, status="down", prefix="ours")
    support.monitors(other_org, 4, status="down", prefix="theirs")
    support.incident(other_org, severity="critical")
    response = support.login(member).get("/admin/")
    assert response.status_code == 200
    figures = response.context["dashboard"]
    assert figures["scope"] == "organization"
    assert figures["monitors"]["down"] == 1
    assert figures["incidents"]["critical"] == 0
    page = response.content.decode()
    assert "ours-" in page
    assert "theirs-" not in page
    for platform_only in ("Platform health", "Organizations</h3>", "Celery queues", "Scheduler"):
        assert platform_only not in page


def test_a_user_without_organization_or_staff_flag_is_not_let_in(django_user_model):
    stranger = django_user_model.objects.create_user("s@example.test", "s@example.test", "pw")
    response = support.login(stranger).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_member_logs_in_through_the_form_without_a_staff_flag(member, client):
    member.set_password("member-pass")
    member.save()
    assert not member.is_staff
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=member, email=member.email, verified=True, primary=True)
    response = client.post(
        "/accounts/login/?next=/admin/",
        {"login": member.email, "password": "member-pass", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert client.get("/admin/").context["dashboard"]["scope"] == "organization"


def test_redis_queue_depths_are_the_lists_kombu_keeps(settings):
    url = "redis://127.0.0.1:6379/15"
    try:
        r = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        r.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379 (CI and the dev machine have one)")
    settings.CELERY_BROKER_URL = url
    settings.HEALTHORCH_REGIONS = ["default", "eu"]
    r.delete("default", "checks.default", "checks.eu", "checks.eu\x06\x163")
    try:
        r.rpush("default", "a", "b")
        r.rpush("checks.eu", "c")
        r.rpush("checks.eu\x06\x163", "d")  # a priority-3 message of the same queue
        assert queues.queue_depths() == {"default": 2, "checks.default": 0, "checks.eu": 2}
    finally:
        r.delete("default", "checks.default", "checks.eu", "checks.eu\x06\x163")
        r.close()


def test_filesystem_queue_depths_count_message_files(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for name in ("1_aa.default.msg", "2_bb.default.msg", "3_cc.checks.default.msg", "junk"):
        (tmp_path / name).write_text("{}")
    assert queues.queue_depths() == {"default": 2, "checks.default": 1}


def test_an_unreachable_or_unknown_broker_reads_unknown(settings, org):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    assert queues.queue_depths() == {"default": None, "checks.default": None}
    settings.CELERY_BROKER_URL = "memory://"
    assert set(queues.queue_depths().values()) == {None}
    assert "unknown" in _dashboard(support.operator_client())


def test_a_member_of_two_organizations_switches_between_them(org, other_org, member):
    MembershipFactory(organization=other_org, user=member, role=Role.VIEWER)
    support.monitors(org, 1, prefix="acme")
    support.monitors(other_org, 1, prefix="globex")
    client = support.login(member)
    page = client.get("/admin/monitors/monitor/").content.decode()
    assert "org-switcher" in page
    assert "acme-" in page  # all of theirs until they choose
    assert "globex-" in page
    response = client.post(
        "/admin/switch-organization/",
        {"organization": str(other_org.pk), "next": "/admin/monitors/monitor/x/change/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/monitors/monitor/"
    page = client.get("/admin/monitors/monitor/").content.decode()
    assert "globex-" in page
    assert "acme-" not in page
    assert client.get("/admin/").context["dashboard"]["monitors"]["total"] == 1
    client.post("/admin/switch-organization/", {"organization": ""})
    page = client.get("/admin/monitors/monitor/").content.decode()
    assert "acme-" in page
    assert "globex-" in page


def test_switching_to_an_organization_one_is_not_in_is_404(member, other_org):
    client = support.login(member)
    response = client.post("/admin/switch-organization/", {"organization": str(other_org.pk)})
    assert response.status_code == 404
    assert client.get("/admin/switch-organization/").status_code == 405


def test_a_member_of_one_organization_gets_no_switcher(member):
    assert "org-switcher" not in _dashboard(support.login(member))


def test_scheduler_lag_is_the_oldest_check_still_due(org, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitors.models import MonitorSchedule

    late, on_time, later = support.monitors(org, 3)
    now = timezone.now().replace(microsecond=0)
    time_machine.move_to(now, tick=False)  # the lag is read at the very instant it was set up
    for monitor, offset in ((late, -45), (on_time, -2), (later, +60)):
        MonitorSchedule.objects.update_or_create(
            monitor=monitor,
            defaults={
                "lane": "check",
                "next_check_at": now + timedelta(seconds=offset),
                "interval_seconds": 60,
            },
        )
    lag = support.operator_client().get("/admin/").context["dashboard"]["scheduler"]
    assert lag["due"] == 2
    assert lag["seconds"] == 45


def test_the_live_figures_are_the_index_figures_alone_in_the_same_scope(member, org, other_org):
    support.monitors(org, 1, status="down", prefix="ours")
    support.monitors(other_org, 4, status="down", prefix="theirs")
    client = support.login(member)
    response = client.get("/admin/dashboard/live/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "<html" not in page  # a fragment, swapped into the index
    assert "ours-" in page
    assert "theirs-" not in page
    assert 'id="tile-monitors"' in page
    assert "Celery queues" not in page


def test_the_live_figures_refuse_a_visitor_who_is_not_signed_in(client):
    response = client.get("/admin/dashboard/live/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_live_figures_cost_the_same_queries_with_ten_times_the_rows(org, owner):
    client = support.login(owner)
    for m in support.monitors(org, 2, status="down"):
        support.rollups(m, hours=3, days=3)
    client.get("/admin/dashboard/live/")
    with CaptureQueriesContext(connection) as before:
        client.get("/admin/dashboard/live/")
    for m in support.monitors(org, 20, status="degraded"):
        support.rollups(m, hours=24, days=90)
        support.incident(org, monitor=m)
    with CaptureQueriesContext(connection) as after:
        client.get("/admin/dashboard/live/")
    assert len(after) == len(before) <= 12


def test_the_onboarding_checklist_ticks_itself_and_leaves_when_done(org, owner):
    from apps.alerts.models import Channel
    from apps.statuspages.models import StatusPage

    client = support.login(owner)
    steps = client.get("/admin/").context["dashboard"]["onboarding"]["steps"]
    assert [s["done"] for s in steps] == [False, False, False, False]
    support.monitors(org, 1)
    Channel.objects.create(organization=org, name="ops", kind="webhook", config={})
    checklist = client.get("/admin/").context["dashboard"]["onboarding"]
    assert {s["key"]: s["done"] for s in checklist["steps"]} == {
        "monitor": True,
        "channel": True,
        "member": False,
        "status_page": False,
    }
    assert checklist["done"] == 2
    # Sending an invitation ticks "invite a member", before anyone accepts it.
    from apps.tenants.services import invitation_create

    invitation_create(
        org=org,
        email="new@example.test",
        role=Role.MEMBER,
        actor_role=Role.OWNER,
        invited_by=owner,
        base_url="http://healthorch.test",
    )
    steps = client.get("/admin/").context["dashboard"]["onboarding"]["steps"]
    assert {s["key"]: s["done"] for s in steps}["member"] is True
    StatusPage.objects.create(organization=org, name="Status", slug="status")
    response = client.get("/admin/")
    assert response.context["dashboard"]["onboarding"] is None
    assert 'id="onboarding"' not in response.content.decode()


def test_another_organizations_rows_tick_nothing_on_the_checklist(org, owner, other_org):
    support.monitors(other_org, 1)
    MembershipFactory(organization=other_org, role=Role.MEMBER)
    steps = support.login(owner).get("/admin/").context["dashboard"]["onboarding"]["steps"]
    assert not any(s["done"] for s in steps)


def test_stripes_tables_are_one_folded_section_for_operators_and_absent_for_members(member):
    response = support.operator_client().get("/admin/")
    page = response.content.decode()
    names = [app["name"] for app in response.context["app_list"]]
    assert "Stripe data" not in names  # not among the product's sections
    [stripe] = response.context["third_party_apps"]
    assert stripe["name"] == "Stripe data"
    assert len(stripe["models"]) > 20
    assert '<details class="console-third-party"' in page
    assert page.index("console-third-party") > page.index("Monitors</a>")  # after ours

    as_member = support.login(member)
    page = as_member.get("/admin/").content.decode()
    assert "Stripe data" not in page
    assert "djstripe" not in page
    assert as_member.get("/admin/djstripe/").status_code == 404
    assert as_member.get("/admin/djstripe/customer/").status_code == 403
