"""OpenAPI helpers: every endpoint documents its error responses in the one error shape."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorOutput = inline_serializer(
    name="Error",
    fields={
        "error": serializers.CharField(help_text="A short title, e.g. 'Invalid input'."),
        "detail": serializers.CharField(required=False),
        "code": serializers.CharField(required=False),
        "fields": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Validation errors by field name.",
        ),
    },
)

UpgradeRequiredOutput = inline_serializer(
    name="UpgradeRequired",
    fields={
        "error": serializers.CharField(default="Upgrade Required"),
        "feature": serializers.CharField(),
        "current_plan": serializers.CharField(),
        "limit": serializers.IntegerField(required=False),
        "used": serializers.IntegerField(required=False),
    },
)

_DESCRIPTIONS = {
    400: "Invalid input: malformed JSON, unknown fields or bad values (named in `fields`).",
    401: "Missing, invalid, revoked or expired credentials (see `WWW-Authenticate`).",
    402: "The organization's plan does not include this feature or limit.",
    403: "The API key's scope or the user's role does not allow this.",
    404: "Not found in the caller's organization.",
    409: "Conflicts with the current state (e.g. removing the last owner).",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A dependency is unavailable.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(
            response=UpgradeRequiredOutput if code == 402 else ErrorOutput,
            description=_DESCRIPTIONS[code],
        )
        for code in codes
    }


AUTHENTICATED = (400, 401, 403, 404)
