import threading

import pytest
from django.db import connection

from apps.core.errors import Conflict
from apps.tenants import services
from apps.tenants.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/members/"


def _membership(user, org):
    return Membership.objects.get(user=user, organization=org)


def test_every_member_can_list_members(client_for, owner, viewer, org):
    body = client_for(viewer).get(URL).json()
    assert {m["email"] for m in body["results"]} == {owner.email, viewer.email}


def test_owner_adds_an_existing_user_by_email(client_for, owner, org):
    newcomer = UserFactory(email="new@example.test")
    response = client_for(owner).post(
        URL, {"email": "NEW@example.test", "role": "viewer"}, format="json"
    )
    assert response.status_code == 201
    assert _membership(newcomer, org).role == Role.VIEWER


def test_adding_an_unknown_email_says_so(client_for, owner):
    response = client_for(owner).post(URL, {"email": "ghost@example.test"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["fields"]


def test_adding_twice_is_a_field_error(client_for, owner, member):
    response = client_for(owner).post(URL, {"email": member.email}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["fields"]


def test_an_unknown_role_is_named(client_for, owner, member, org):
    m = _membership(member, org)
    response = client_for(owner).patch(f"{URL}{m.pk}/", {"role": "superhero"}, format="json")
    assert response.status_code == 400
    assert "role" in response.json()["fields"]
    assert _membership(member, org).role == Role.MEMBER


def test_admin_changes_a_role_but_cannot_create_owners(client_for, admin_user, member, org):
    client = client_for(admin_user)
    m = _membership(member, org)
    assert client.patch(f"{URL}{m.pk}/", {"role": "viewer"}, format="json").status_code == 200
    assert _membership(member, org).role == Role.VIEWER
    response = client.patch(f"{URL}{m.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 400
    assert _membership(member, org).role == Role.VIEWER


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_members_and_viewers_cannot_manage_members(request, client_for, owner, org, role_fixture):
    client = client_for(request.getfixturevalue(role_fixture))
    UserFactory(email="new@example.test")
    assert client.post(URL, {"email": "new@example.test"}, format="json").status_code == 403
    owner_m = _membership(owner, org)
    assert client.patch(f"{URL}{owner_m.pk}/", {"role": "viewer"}, format="json").status_code == 403
    assert client.delete(f"{URL}{owner_m.pk}/").status_code == 403
    assert _membership(owner, org).role == Role.OWNER


def test_the_last_owner_cannot_be_demoted_or_removed(client_for, owner, org):
    m = _membership(owner, org)
    client = client_for(owner)
    demote = client.patch(f"{URL}{m.pk}/", {"role": "admin"}, format="json")
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    assert client.delete(f"{URL}{m.pk}/").status_code == 409
    assert _membership(owner, org).role == Role.OWNER


def test_an_owner_can_step_down_once_there_is_another(client_for, owner, org):
    second = MembershipFactory(organization=org, role=Role.OWNER)
    m = _membership(owner, org)
    assert (
        client_for(owner).patch(f"{URL}{m.pk}/", {"role": "admin"}, format="json").status_code
        == 200
    )
    assert Membership.objects.filter(organization=org, role=Role.OWNER).get() == second


def test_a_member_may_leave(client_for, member, org):
    m = _membership(member, org)
    assert client_for(member).delete(f"{URL}{m.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=m.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    """The race the organization row lock prevents: both see the other as remaining owner."""
    a = MembershipFactory(role=Role.OWNER)
    b = MembershipFactory(organization=a.organization, role=Role.OWNER)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(m):
        barrier.wait()
        try:
            services.member_change_role(membership=m, role=Role.ADMIN, actor_role=Role.OWNER)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(m,)) for m in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "ok"]
    assert Membership.objects.filter(organization=a.organization, role=Role.OWNER).count() == 1
