import pytest

pytestmark = pytest.mark.django_db


def test_the_price_list_is_public_and_matches_the_pricing_table(anon):
    response = anon.get("/api/v1/plans")
    assert response.status_code == 200
    plans = {p["code"]: p for p in response.json()}
    assert list(plans) == ["free", "pro", "business", "enterprise"]
    limits = {code: p["limits"] for code, p in plans.items()}
    assert limits["free"] == {
        "monitors": 10,
        "min_interval_seconds": 300,
        "members": 3,
        "retention_days": 7,
        "notifications_per_month": 500,
        "api_requests_per_minute": 60,
        "metric_samples_per_month": 100_000,
        "log_lines_per_month": 100_000,
        "log_retention_days": 3,
    }
    assert limits["pro"]["monitors"] == 100
    assert limits["business"]["min_interval_seconds"] == 30
    assert limits["enterprise"]["monitors"] is None
    assert limits["enterprise"]["members"] is None
    assert limits["enterprise"]["notifications_per_month"] is None
    assert limits["enterprise"]["api_requests_per_minute"] == 10_000
    assert plans["business"]["sla"] == {
        "availability_pct": 99.9,
        "response_ms": 500,
        "error_pct": 0.5,
    }
    assert plans["enterprise"]["sla"]["availability_pct"] == 99.95


def test_features_grow_with_the_plan(anon):
    plans = {p["code"]: set(p["features"]) for p in anon.get("/api/v1/plans").json()}
    assert plans["free"] == {
        "metrics_ingestion",
        "health_checks",
        "email_channel",
        "webhook_channel",
    }
    paid = {
        "integrations",
        "escalation_policies",
        "auto_orchestration",
        "status_pages",
        "sla_reports",
        "mfa_enforcement",
    }
    assert plans["pro"] == plans["free"] | paid
    assert plans["business"] == plans["pro"] | {"ml_healing", "audit_logs", "sso"}
    assert plans["enterprise"] == plans["business"]
