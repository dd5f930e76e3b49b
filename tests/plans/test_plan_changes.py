"""What a plan change promises (docs/concepts/plans.md): a downgrade loses nothing but pauses,
raises and disables what no longer fits; an upgrade afterwards restores nothing by itself but
lifts every limit at once; members over a smaller plan's limit keep their access while no one
new is added until the count is under the limit."""

from __future__ import annotations

import pytest

from apps.alerts.models import Channel
from apps.alerts.services import channels as channel_services
from apps.monitors import services as monitor_services
from apps.monitors.models import Monitor
from apps.plans.services import organization_change_plan
from apps.tenants.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
MEMBERS = "/api/v1/members/"


def _monitor(org, n: int) -> Monitor:
    return monitor_services.monitor_create(
        org=org,
        data={
            "name": f"svc {n}",
            "kind": "tcp",
            "interval_seconds": 60,
            "config": {"host": "127.0.0.1", "port": 9},
        },
    )


def _state(org) -> dict:
    """What the downgrade decided, per row: the user's view of what is paused and limited."""
    return {
        "monitors": {
            m.name: (m.paused, m.paused_reason, m.interval_seconds)
            for m in Monitor.objects.for_org(org)
        },
        "channels": {c.name: (c.enabled, c.disabled_reason) for c in Channel.objects.for_org(org)},
    }


def test_upgrading_after_a_downgrade_restores_nothing_but_lifts_every_limit(
    org, owner, client_for, settings
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True  # the Apprise URL names 127.0.0.1
    organization_change_plan(org=org, plan_code="pro", source="test")
    monitors = [_monitor(org, n) for n in range(11)]  # the free plan keeps 10 active
    channel_services.channel_create(
        org=org, kind="apprise", name="chat", config={"url": "json://127.0.0.1:9/hook"}
    )

    organization_change_plan(org=org, plan_code="free", source="test")
    downgraded = _state(org)
    paused = [name for name, (p, _reason, _i) in downgraded["monitors"].items() if p]
    assert paused == ["svc 10"]  # the newest one, with its reason
    assert "over its limit of 10" in downgraded["monitors"]["svc 10"][1]
    assert {i for _p, _r, i in downgraded["monitors"].values()} == {300}  # raised to free's
    assert downgraded["channels"]["chat"][0] is False

    organization_change_plan(org=org, plan_code="pro", source="test")
    assert _state(org) == downgraded  # nothing came back by itself

    # ...but every limit is lifted at once: the owner brings each back by hand.
    client = client_for(owner)
    newest = monitors[-1]
    assert client.post(f"/api/v1/monitors/{newest.pk}/resume/").status_code == 200
    patch = client.patch(f"/api/v1/monitors/{newest.pk}/", {"interval_seconds": 60}, format="json")
    assert patch.status_code == 200, patch.json()
    chat = Channel.objects.get(name="chat")
    enable = client.patch(f"/api/v1/channels/{chat.pk}/", {"enabled": True}, format="json")
    assert enable.status_code == 200, enable.json()
    after = _state(org)
    assert after["monitors"]["svc 10"] == (False, "", 60)
    assert after["channels"]["chat"][0] is True


def test_members_over_a_smaller_plans_limit_keep_access_and_no_one_new_is_added(
    org, owner, client_for
):
    organization_change_plan(org=org, plan_code="pro", source="test")
    members = [
        MembershipFactory(organization=org, role=Role.MEMBER).user for _ in range(4)
    ]  # 5 with the owner; the free plan allows 3
    newcomer = UserFactory(email="newcomer@example.test")

    organization_change_plan(org=org, plan_code="free", source="test")
    assert Membership.objects.filter(organization=org).count() == 5
    for user in [owner, *members]:
        assert client_for(user).get("/api/v1/organization").status_code == 200
        assert client_for(user).get("/api/v1/monitors/").status_code == 200

    owner_client = client_for(owner)

    def add_newcomer():
        return owner_client.post(
            MEMBERS, {"email": newcomer.email, "role": "member"}, format="json"
        )

    # Over the limit (5 of 3), then at it (3 of 3): nobody new either time.
    for leaving, used in [(members[0], 4), (members[1], 3)]:
        refused = add_newcomer()
        assert refused.status_code == 402
        assert refused.json()["limit"] == 3
        gone = Membership.objects.get(organization=org, user=leaving)
        assert owner_client.delete(f"{MEMBERS}{gone.pk}/").status_code == 204
        assert Membership.objects.filter(organization=org).count() == used
    refused = add_newcomer()
    assert (refused.status_code, refused.json()["used"]) == (402, 3)
    assert not Membership.objects.filter(organization=org, user=newcomer).exists()

    # Under the limit: the next one is let in.
    gone = Membership.objects.get(organization=org, user=members[2])
    assert owner_client.delete(f"{MEMBERS}{gone.pk}/").status_code == 204
    assert add_newcomer().status_code == 201
