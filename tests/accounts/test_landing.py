"""The front page: what healthorch does, the live price list, the ways in; served from the
cache and rendered again as soon as a public plan changes."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.plans.models import Plan

pytestmark = pytest.mark.django_db


def test_the_front_page_shows_the_plans_and_the_ways_in(django_assert_max_num_queries):
    client = Client()
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for plan in Plan.objects.filter(is_public=True):
        assert f'id="plan-{plan.code}"' in page
    assert "149" in page  # the business plan's price, from the database
    for link in ('href="/accounts/signup/"', 'href="/accounts/login/"', 'href="/api/docs/"'):
        assert link in page
    assert 'href="/status/demo/"' in page
    # Landmarks and a language, for screen readers; no script at all.
    for landmark in ("<header", "<nav", "<main", "<footer", '<html lang="en">'):
        assert landmark in page
    assert "<script" not in page
    # Served from the cache afterwards: one query (the price list's version).
    with django_assert_max_num_queries(1):
        assert client.get("/").status_code == 200


def test_the_price_list_is_the_apis(anon):
    page = Client().get("/").content.decode()
    plans = anon.get("/api/v1/plans").json()
    assert [p["code"] for p in plans] == [
        p.code for p in Plan.objects.filter(is_public=True).order_by("sort_order")
    ]
    for plan in plans:
        assert f'id="plan-{plan["code"]}"' in page


def test_a_plan_edited_shows_at_once_despite_the_cache():
    client = Client()
    assert "Pro" in client.get("/").content.decode()
    pro = Plan.objects.get(code="pro")
    pro.name = "Professional"
    pro.monthly_price_cents = 3900
    pro.save()
    page = client.get("/").content.decode()
    assert "Professional" in page
    assert "39" in page


def test_a_hidden_plan_leaves_the_front_page():
    Plan.objects.filter(code="enterprise").update(is_public=False)
    Plan.objects.get(code="free").save()  # any save moves the version (an update() may not)
    assert 'id="plan-enterprise"' not in Client().get("/").content.decode()


def test_only_reads_are_served():
    assert Client().post("/").status_code == 405
