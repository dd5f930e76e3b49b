import pytest

from apps.tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/organization"


def test_it_shows_the_callers_organization_and_role(client_for, member, org):
    body = client_for(member).get(URL).json()
    assert body["id"] == str(org.pk)
    assert (body["name"], body["slug"], body["plan"], body["role"]) == (
        "Acme",
        "acme",
        "free",
        "member",
    )


def test_owner_renames_the_organization(client_for, owner, org):
    response = client_for(owner).patch(URL, {"name": "Acme Corp"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Corp"
    org.refresh_from_db()
    assert org.name == "Acme Corp"


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_members_and_viewers_cannot_change_it(request, client_for, org, role_fixture):
    client = client_for(request.getfixturevalue(role_fixture))
    assert client.patch(URL, {"name": "Mine"}, format="json").status_code == 403
    org.refresh_from_db()
    assert org.name == "Acme"


def test_the_plan_is_not_writable_here(client_for, owner, org):
    response = client_for(owner).patch(URL, {"plan": "enterprise", "name": "X"}, format="json")
    assert response.status_code == 400
    assert "plan" in response.json()["fields"]
    org.refresh_from_db()
    assert (org.plan_id, org.name) == ("free", "Acme")


def test_a_taken_slug_is_a_field_error(client_for, owner, other_org):
    response = client_for(owner).patch(URL, {"slug": other_org.slug}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["fields"]


def test_bad_values_are_named(client_for, owner):
    response = client_for(owner).patch(URL, {"slug": "not a slug!", "name": ""}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"slug", "name"}


def test_a_user_in_two_organizations_switches_with_x_organization(client_for):
    user = UserFactory()
    first = MembershipFactory(user=user, role=Role.OWNER).organization
    second = MembershipFactory(user=user, role=Role.VIEWER).organization
    assert client_for(user).get(URL).json()["slug"] == first.slug
    switched = client_for(user, org_slug=second.slug).get(URL).json()
    assert (switched["slug"], switched["role"]) == (second.slug, "viewer")
    # Rights follow the selected organization: a viewer there.
    denied = client_for(user, org_slug=second.slug).patch(URL, {"name": "x"}, format="json")
    assert denied.status_code == 403


def test_an_organization_the_user_is_not_in_is_404(client_for, member, other_org):
    response = client_for(member, org_slug=other_org.slug).get(URL)
    assert response.status_code == 404
    assert client_for(member, org_slug="does-not-exist").get(URL).status_code == 404


def test_a_key_cannot_reach_another_organization_with_the_header(key_client, org, other_org):
    client = key_client(org)
    client.credentials(HTTP_X_API_KEY=client.secret, HTTP_X_ORGANIZATION=other_org.slug)
    assert client.get(URL).status_code == 404


def test_a_user_without_organization_is_refused(client_for):
    response = client_for(UserFactory()).get(URL)
    assert response.status_code == 403


def test_outsider_sees_only_their_own_organization(client_for, outsider, org):
    body = client_for(outsider).get(URL).json()
    assert body["slug"] == "globex"
    assert client_for(outsider).patch(URL, {"name": "Pwned"}, format="json").status_code == 200
    org.refresh_from_db()
    assert org.name == "Acme"


def test_registration_slugs_are_unique(anon):
    OrganizationFactory(slug="acme")
    response = anon.post(
        "/api/v1/auth/register",
        {"email": "a@example.test", "password": "correct horse battery 9", "organization": "Acme"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["organization"].startswith("acme-")
