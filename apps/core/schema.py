"""OpenAPI helpers: every endpoint documents its error responses in the one error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
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

READ = (401, 403, 404, 429)


def crud_schema(
    output: Any,
    request: Any = None,
    *,
    created: Any = None,
    create_summary: str | None = None,
    read: tuple[int, ...] = READ,
    write: tuple[int, ...] = (*AUTHENTICATED, 429),
    delete: tuple[int, ...] | None = None,
    list_errors: tuple[int, ...] | None = None,
    list_parameters: list[OpenApiParameter] | None = None,
    update: bool = True,
    update_request: Any = None,
) -> Any:
    """The schema of a tenant's collection: list and retrieve answer `output`; create (`request`
    in; `created`, else `output`, out), partial update (unless `update` is False) and destroy,
    with the errors each may answer (`delete` defaults to `read`; the update takes
    `update_request`, else `request`)."""
    schemas = {
        "list": extend_schema(
            parameters=list_parameters,
            responses={200: output(many=True), **errors(*(list_errors or read))},
        ),
        "retrieve": extend_schema(responses={200: output, **errors(*read)}),
        "create": extend_schema(
            request=request,
            responses={201: created or output, **errors(*write)},
            summary=create_summary,
        ),
        "destroy": extend_schema(responses={204: None, **errors(*(delete or read))}),
    }
    if update:
        schemas["partial_update"] = extend_schema(
            request=update_request or request, responses={200: output, **errors(*write)}
        )
    return extend_schema_view(**schemas)
