"""OpenAPI helpers: every endpoint documents its error responses in the one error shape.

`AutoSchema` (the project's schema class) adds to every operation the errors any request can
meet before or around its view, so no operation's list of statuses leaves them out: 400 (a
query string or body refused before the view), and for operations that need credentials 401,
403, 404 (an organization named in `X-Organization` the caller is not in) and 429.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

# A field's messages, or for a nested object or list the same shape one level down, keyed by
# field name or by the item's index ("0"); `non_field_errors` holds what concerns the object
# as a whole. Lists of messages may hold the nested shape too (a list's items).
_MESSAGES_OR_NESTED = {
    "anyOf": [
        {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
        {"type": "object"},
    ]
}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": _MESSAGES_OR_NESTED,
        "example": {"name": ["This field is required."], "steps": {"0": {"channels": ["..."]}}},
    }
)
class _FieldErrors(serializers.DictField):
    pass


ErrorOutput = inline_serializer(
    name="Error",
    fields={
        "error": serializers.CharField(help_text="A short title, e.g. 'Invalid input'."),
        "detail": serializers.CharField(help_text="A sentence saying what went wrong."),
        "code": serializers.CharField(help_text="A stable machine-readable code."),
        "fields": _FieldErrors(
            required=False,
            help_text="Validation errors by field name: a list of messages, or for a nested "
            "object or list an object of the same shape keyed by field name or item index "
            "(`non_field_errors` for the object as a whole).",
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
    400: "Invalid input: a malformed body or query string, unknown fields or bad values "
    "(named in `fields`).",
    401: "Missing, invalid, revoked or expired credentials (see `WWW-Authenticate`).",
    402: "The organization's plan does not include this feature or limit.",
    403: "The API key's scope or the user's role does not allow this.",
    404: "Not found in the caller's organization.",
    409: "Conflicts with the current state (e.g. removing the last owner).",
    413: "The request body is too large.",
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


#: a parameter extension (removed from the published schema) for a filter that refuses `?x=`
REFUSES_EMPTY = "x-refuses-empty"
_NEVER_EMPTY = {"page_size", "cursor"}
_ANYONE = (400,)
_AUTHENTICATED = (400, 401, 403, 404, 429)


class AutoSchema(openapi.AutoSchema):
    # _get_response_bodies, not get_response_serializers: extend_schema(responses=...)
    # replaces the latter in a subclass, and every operation must get these.
    def _get_parameters(self) -> list[dict[str, Any]]:
        # A query parameter sent empty (`?monitor=`) is taken as not sent, except by the few
        # that refuse it (true/false, times that must parse, page_size, cursor); say so.
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] != "query":
                continue
            refuses = parameter.pop(REFUSES_EMPTY, False) or parameter["name"] in _NEVER_EMPTY
            filterset = getattr(self.view, "filterset_class", None)
            declared = filterset.base_filters.get(parameter["name"]) if filterset else None
            if refuses or not getattr(declared, "schema_allow_empty", True):
                continue
            parameter["allowEmptyValue"] = True
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if not self.path.startswith("/api/"):
            return responses
        auth = self.get_auth()
        for code in _ANYONE if not auth or {} in auth else _AUTHENTICATED:
            if str(code) not in responses:
                response = self._get_response_for_code(ErrorOutput, str(code), None, direction)
                response["description"] = _DESCRIPTIONS[code]
                responses[str(code)] = response
        return dict(sorted(responses.items()))
