"""Request metrics under the names a Prometheus user expects, labelled by route (the URL
pattern), beside django-prometheus' own."""

from __future__ import annotations

import uuid

import pytest

from apps.monitors.models import Monitor
from tests.observability.scrape import samples, total

pytestmark = pytest.mark.django_db


def _monitor(org, slug="api"):
    return Monitor.objects.create(
        organization=org, name=slug, slug=slug, kind="http", config={"url": "http://127.0.0.1:9/"}
    )


def _count(client, **labels) -> float:
    return total(client.get("/metrics").content.decode(), "http_requests_total", **labels)


@pytest.mark.parametrize(
    ("method", "path", "body", "route", "status"),
    [
        ("get", "/api/v1/monitors/", None, "/api/v1/monitors/", "200"),
        # Without the slash it is served by the same pattern, so it is the same series.
        ("get", "/api/v1/monitors", None, "/api/v1/monitors/", "200"),
        ("get", "/api/v1/monitors/{own}/", None, "/api/v1/monitors/<pk>/", "200"),
        ("get", "/api/v1/monitors/{other}/", None, "/api/v1/monitors/<pk>/", "404"),
        ("get", "/api/v1/monitors/{random}/", None, "/api/v1/monitors/<pk>/", "404"),
        ("post", "/api/v1/monitors/", {"kind": "nope"}, "/api/v1/monitors/", "400"),
        ("delete", "/api/v1/organization", None, "/api/v1/organization", "403"),
        ("get", "/no/such/{random}", None, "unmatched", "404"),
        ("get", "/live", None, "/live", "200"),
    ],
)
def test_each_request_is_counted_by_method_route_and_status(
    key_client, org, other_org, client, method, path, body, route, status
):
    own, other = _monitor(org), _monitor(other_org)
    path = path.format(own=own.pk, other=other.pk, random=uuid.uuid4())
    labels = {"method": method.upper(), "route": route, "status": status}
    api = key_client(org)
    before = _count(client, **labels)

    response = (
        getattr(api, method)(path, body, format="json") if body else getattr(api, method)(path)
    )

    assert str(response.status_code) == status
    assert _count(client, **labels) == before + 1
    text = client.get("/metrics").content.decode()
    assert total(text, "http_request_duration_seconds_count", **labels) >= 1
    # The path's ids (a tenant's own, another tenant's, made up) never become label values.
    for ident in (own.pk, other.pk):
        assert str(ident) not in text


def test_an_unknown_method_is_counted_as_other(client):
    labels = {"method": "other", "route": "/live", "status": "405"}
    before = _count(client, **labels)
    assert client.generic("BREW", "/live").status_code == 405
    assert _count(client, **labels) == before + 1
    assert _count(client, method="BREW") == 0


def test_django_prometheus_metrics_are_still_served(client):
    client.get("/live")
    names = {name for name, _, _ in samples(client.get("/metrics").content.decode())}
    assert "django_http_requests_total_by_method_total" in names
    assert "http_requests_total" in names
    assert "http_request_duration_seconds_bucket" in names
