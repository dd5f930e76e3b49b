"""FieldErrors, the project error a service raises for input refused field by field, answers
byte for byte as the DRF ValidationError the services raised before, and reads the same in the
console."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer

from apps.core.admin import refusal_text
from apps.core.errors import FieldErrors, ServiceError, exception_handler, invalid_under


class _Config(serializers.Serializer):
    url = serializers.URLField()
    retries = serializers.IntegerField(min_value=0)


def _config_errors() -> dict:
    serializer = _Config(data={"url": "not a url", "retries": -1})
    assert not serializer.is_valid()
    return serializer.errors


CASES = {
    "flat": {"severities": ["critical already covered by 'Night'."]},
    "detail-key": {"detail": ["Only active http, tcp, tls, dns, postgres and redis monitors."]},
    "non-field": {"non_field_errors": ["Give one of them."], "tag": ["Give exactly one."]},
}


def _rendered(exc: Exception) -> tuple[int, bytes]:
    response = exception_handler(exc, {})
    assert response is not None
    return response.status_code, JSONRenderer().render(response.data)


@pytest.mark.parametrize("fields", CASES.values(), ids=CASES.keys())
def test_field_errors_answer_as_a_validation_error_did(fields):
    assert _rendered(FieldErrors(fields)) == _rendered(ValidationError(fields))
    assert refusal_text(FieldErrors(fields)) == refusal_text(ValidationError(fields))


def test_a_plugin_config_refused_under_a_field_answers_as_before():
    with pytest.raises(FieldErrors) as caught, invalid_under("config"):
        _Config(data={"url": "not a url", "retries": -1}).is_valid(raise_exception=True)

    before = ValidationError({"config": _config_errors()})
    assert _rendered(caught.value) == _rendered(before)
    assert refusal_text(caught.value) == refusal_text(before)
    status, body = _rendered(caught.value)
    assert status == 400
    assert body.startswith(b'{"error":"Invalid input","fields":{"config":{"url":[')


def test_field_errors_are_service_errors():
    assert issubclass(FieldErrors, ServiceError)  # caught wherever a refusal is


def test_a_validation_error_carries_detail_and_code_beside_the_fields(client_for, member):
    response = client_for(member).post(
        "/api/v1/monitors/", {"kind": "http", "interval_seconds": "often"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid input"
    assert set(body["fields"]) == {"name", "interval_seconds"}
    named = body["detail"].removeprefix("Check these fields: ").removesuffix(".").split(", ")
    assert sorted(named) == ["interval_seconds", "name"]
    assert body["code"] == "invalid"
