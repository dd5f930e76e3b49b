"""Single sign-on per organization: configured through the API (business plan and up, the
secret encrypted), offered only for a verified domain, and a sign-in through a real OpenID
Connect provider on 127.0.0.1 lets in only that domain's people, as members."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.test import Client

from apps.accounts import services
from apps.accounts.models import SingleSignOn
from apps.tenants.models import Membership, Role
from tests.accounts.oidc import serve_oidc_provider

pytestmark = pytest.mark.django_db

CONFIG = {
    "issuer": "https://id.example.test",
    "client_id": "healthorch",
    "client_secret": "provider-secret",
    "domain": "acme.test",
}


@pytest.fixture
def provider():
    with serve_oidc_provider() as issuer:
        yield issuer


def _configured(org, issuer: str) -> SingleSignOn:
    sso = services.sso_configure(
        org=org, issuer=issuer, client_id="healthorch", client_secret="s3cret", domain="acme.test"
    )
    return services.sso_verify_domain(sso=sso)


def _sign_in_through(client: Client, sso: SingleSignOn, subject: str):
    """The whole round trip: our page posts to allauth, allauth sends the browser to the
    provider, the provider's form is answered with `subject`, the browser comes back."""
    start = client.post(f"/accounts/oidc/{sso.provider_id}/login/", {"process": "login"})
    assert start.status_code == 302, start.content.decode()[:500]
    authorize = start["Location"]
    assert authorize.startswith(sso.issuer)
    answer = requests.post(authorize, data={"sub": subject}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    back = urlparse(answer.headers["Location"])
    assert back.path == f"/accounts/oidc/{sso.provider_id}/login/callback/"
    return client.get(back.path, parse_qs(back.query))


def test_configuring_sso_is_a_business_feature(client_for, owner, org):
    refused = client_for(owner).put("/api/v1/sso", CONFIG, format="json")
    assert refused.status_code == 402
    assert refused.json()["feature"] == "sso"


def test_the_secret_is_encrypted_and_never_shown(business, client_for, owner):
    response = client_for(owner).put("/api/v1/sso", CONFIG, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["domain_verified"] is False
    assert body["callback_url"].endswith("/login/callback/")
    assert "provider-secret" not in response.content.decode()
    stored = SingleSignOn.objects.get()
    assert "provider-secret" not in stored.client_secret_encrypted
    assert "provider-secret" not in client_for(owner).get("/api/v1/sso").content.decode()


def test_members_and_outsiders_cannot_read_or_change_it(
    business, client_for, owner, member, outsider, org
):
    client_for(owner).put("/api/v1/sso", CONFIG, format="json")
    assert client_for(member).get("/api/v1/sso").status_code == 403
    theirs = client_for(outsider)
    assert theirs.get("/api/v1/sso").status_code == 404  # they have none; ours is not shown
    assert theirs.delete("/api/v1/sso").status_code == 204  # removes their own (none)
    assert client_for(outsider, org_slug=org.slug).get("/api/v1/sso").status_code == 404
    assert SingleSignOn.objects.filter(organization=org).exists()


def test_a_domain_belongs_to_one_organization(business, client_for, owner, outsider, other_org):
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=other_org, plan_code="business", source="test")
    assert client_for(owner).put("/api/v1/sso", CONFIG, format="json").status_code == 200
    taken = client_for(outsider).put("/api/v1/sso", CONFIG, format="json")
    assert taken.status_code == 400
    assert taken.json()["fields"]["domain"]


def test_bad_input_is_a_json_400(business, client_for, owner):
    client = client_for(owner)
    for body in (
        {**CONFIG, "issuer": "ftp://id.example.test"},
        {**CONFIG, "domain": "not a domain"},
        {**CONFIG, "client_secret": ""},
        {"issuer": "https://x.example.test"},
    ):
        response = client.put("/api/v1/sso", body, format="json")
        assert response.status_code == 400, body
        assert response["Content-Type"] == "application/json"


def test_a_person_of_the_domain_signs_in_and_becomes_a_member(business, org, provider):
    sso = _configured(org, provider)
    client = Client()
    response = _sign_in_through(client, sso, "ada@acme.test")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    membership = Membership.objects.get(user__email="ada@acme.test")
    assert (membership.organization_id, membership.role) == (org.pk, Role.MEMBER)
    assert Membership.objects.filter(user__email="ada@acme.test").count() == 1  # no own org
    assert client.get("/admin/").status_code == 200


def test_someone_outside_the_domain_is_refused(business, org, provider):
    sso = _configured(org, provider)
    response = _sign_in_through(Client(), sso, "eve@elsewhere.test")
    assert response.status_code == 403
    assert "acme.test" in response.content.decode()
    assert not Membership.objects.filter(
        organization=org, user__email="eve@elsewhere.test"
    ).exists()


def test_an_unverified_domain_or_a_lower_plan_offers_no_provider(business, org, provider):
    sso = services.sso_configure(
        org=org, issuer=provider, client_id="healthorch", client_secret="s", domain="acme.test"
    )
    page = Client().post("/accounts/sso/", {"email": "ada@acme.test"})
    assert page.status_code == 404
    assert Client().post(f"/accounts/oidc/{sso.provider_id}/login/").status_code == 404
    services.sso_verify_domain(sso=sso)
    assert Client().post("/accounts/sso/", {"email": "ada@acme.test"}).status_code == 200
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=org, plan_code="pro", source="test")
    assert Client().post("/accounts/sso/", {"email": "ada@acme.test"}).status_code == 404


def test_the_sso_page_leads_to_the_organizations_provider(business, org, provider):
    sso = _configured(org, provider)
    page = Client().post("/accounts/sso/", {"email": "Ada@Acme.test"}).content.decode()
    assert f'action="/accounts/oidc/{sso.provider_id}/login/"' in page
    assert "Acme" in page
