"""One pattern for a tenant's filtered lists.

- `cursor(...)`: the cursor page class of a list (newest first unless told otherwise).
- `FilteredListMixin`: a viewset mixin that filters the `list` action (only: a detail lookup
  ignores the query string) through the view's `filterset_class`, by the project's default
  filter backend (django-filter). A bad value answers 400 with the field named.
- Filters whose bad values are refused with the messages the API's DRF serializers give
  (clients see one wording whether a value came in a body or a query string), and the
  comma-separated multiple-choice, true/false and ISO time filters the incident lists had
  parsed by hand, with their messages.
- `filter_parameters`/`list_schema`: a FilterSet documents its own query parameters.
- `cursor_page`/`apply_filters`: the same for a list under a detail route (an incident's
  timeline, a monitor's results).
"""

from __future__ import annotations

from typing import Any, TypeVar

import django_filters
from django import forms
from django.db.models import QuerySet
from django.forms.utils import ErrorDict
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from django_filters.utils import translate_validation
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.pagination import CursorPagination

from apps.core.pagination import StrictPageSize
from apps.core.schema import REFUSES_EMPTY, errors

# The messages DRF's serializer fields give for the same bad values.
UUID_MESSAGES = {"invalid": "Must be a valid UUID."}
CHOICE_MESSAGES = {"invalid_choice": '"%(value)s" is not a valid choice.'}
DATETIME_MESSAGES = {
    "invalid": "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
}
CHAR_MESSAGES = {
    "max_length": "Ensure this field has no more than %(limit_value)d characters.",
    "blank": "This field may not be blank.",
}


def cursor(*ordering: str, page_size: int = 50, max_page_size: int = 200) -> type[CursorPagination]:
    """A cursor page class ordered by `ordering` (unique at the end, e.g. "-id"), with the
    `page_size` query parameter up to `max_page_size`."""
    return type(
        "Cursor",
        (StrictPageSize, CursorPagination),
        {
            "ordering": ordering,
            "page_size": page_size,
            "page_size_query_param": "page_size",
            "max_page_size": max_page_size,
        },
    )


class FilteredListMixin:
    # Filters the list action only; the view sets `filterset_class`. (A comment, not a
    # docstring: the schema would take a docstring as every operation's description.)

    action: str | None

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)  # type: ignore[misc]


def uuid_filter(field_name: str, description: str = "") -> django_filters.UUIDFilter:
    # strip=False: a UUID with spaces around it is refused, as by the serializers.
    return document(
        django_filters.UUIDFilter(field_name=field_name, error_messages=UUID_MESSAGES, strip=False),
        description,
    )


def choice_filter(choices: Any, field_name: str | None = None) -> django_filters.ChoiceFilter:
    return django_filters.ChoiceFilter(
        field_name=field_name, choices=choices, error_messages=CHOICE_MESSAGES
    )


class _ExactIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: Any) -> Any:
        # Django's field trims spaces around the value; the serializers refused them.
        if isinstance(value, str) and value != value.strip():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time parsed as the serializers' DateTimeField parses it."""

    field_class = _ExactIsoDateTimeField


def since_until(
    field_name: str,
    described_as: str | None = "",
    *,
    filter_class: type[django_filters.Filter] = DateTimeFilter,
) -> tuple[django_filters.Filter, django_filters.Filter]:
    """`since` (at or after) and `until` (before) on one timestamp; in a FilterSet's body:
    `since, until = since_until("created_at", "created ")`. `described_as` starts the
    schema's descriptions ("created at or after (ISO 8601)"); None leaves them bare."""
    pair = (
        filter_class(field_name=field_name, lookup_expr="gte", error_messages=DATETIME_MESSAGES),
        filter_class(field_name=field_name, lookup_expr="lt", error_messages=DATETIME_MESSAGES),
    )
    if described_as is not None:
        document(pair[0], f"{described_as}at or after (ISO 8601)")
        document(pair[1], f"{described_as}before (ISO 8601)")
    return pair


F = TypeVar("F", bound=django_filters.Filter)


def document(filter_: F, description: str = "", *, enum: list[str] | None = None) -> F:
    """Say how the schema shows a filter: its description, and the values to list (for
    filters whose values are not, or not only, their choices)."""
    filter_.schema_description = description
    filter_.schema_enum = enum
    return filter_


def filter_parameters(filterset_class: type[django_filters.FilterSet]) -> list[OpenApiParameter]:
    """The schema's query parameters of a FilterSet, one per filter: a string (a boolean for
    `TrueFalseFilter`), its choices as the enum unless `document` named others."""
    parameters = []
    for name, filter_ in filterset_class.base_filters.items():
        enum = getattr(filter_, "schema_enum", None)
        if enum is None and "choices" in filter_.extra:
            enum = [value for value, _ in filter_.extra["choices"]]
        parameters.append(
            OpenApiParameter(
                name,
                getattr(filter_, "schema_type", str),
                enum=enum,
                description=getattr(filter_, "schema_description", ""),
                extensions=(
                    None if getattr(filter_, "schema_allow_empty", True) else {REFUSES_EMPTY: True}
                ),
            )
        )
    return parameters


class _TextField(forms.CharField):
    def to_python(self, value: Any) -> Any:
        # As the serializers: absent or empty is no filter, only blanks is refused.
        if value not in self.empty_values and not str(value).strip():
            raise forms.ValidationError(self.error_messages["blank"], code="blank")
        return super().to_python(value)


class TextFilter(django_filters.CharFilter):
    """Free text, trimmed; blanks alone are a 400, as in a serializer's CharField. Give
    `error_messages=CHAR_MESSAGES`."""

    field_class = _TextField


class FirstErrorFilterSet(django_filters.FilterSet):
    """A FilterSet that reports only its first bad parameter (in declaration order): the
    incident and window lists answered one at a time before they had FilterSets."""

    @property
    def errors(self) -> ErrorDict:
        errors = self.form.errors
        if len(errors) <= 1:
            return errors
        first = next(iter(errors))
        return ErrorDict({first: errors[first]})


class _CommaListWidget(forms.TextInput):
    """`?status=a,b` and `?status=a&status=b` alike: every value, in order."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        raw = data.getlist(name) if hasattr(data, "getlist") else [data.get(name) or ""]
        return [v for item in raw for v in item.split(",") if v]


class _ChoiceListField(forms.Field):
    widget = _CommaListWidget

    def __init__(self, *, allowed: list[str], **kwargs: Any) -> None:
        self.allowed = list(allowed)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        values = list(value or [])
        bad = [v for v in values if v not in self.allowed]
        if bad:
            raise forms.ValidationError(
                f"Unknown value {bad[0]!r}; use {', '.join(self.allowed)}.", code="invalid_choice"
            )
        return values


class ChoiceListFilter(django_filters.Filter):
    """Any of several values, comma-separated or repeated; `allowed=[...]` names them all."""

    field_class = _ChoiceListField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("lookup_expr", "in")
        super().__init__(*args, **kwargs)


class _TrueFalseField(forms.Field):
    def to_python(self, value: Any) -> bool | None:
        # Only an absent parameter is "no filter": `?active=` is refused like `?active=maybe`.
        if value is None:
            return None
        if value not in ("true", "false"):
            raise forms.ValidationError("Use true or false.", code="invalid")
        return value == "true"


class TrueFalseFilter(django_filters.Filter):
    """Exactly `true` or `false` (no 1/0/yes/no)."""

    field_class = _TrueFalseField
    schema_type = bool
    schema_allow_empty = False


class _IsoTimeField(forms.Field):
    """A present parameter must parse, an empty one too; a time without an offset is taken
    as it comes (the database reads it in the default time zone)."""

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            parsed = parse_datetime(value)
        except ValueError:  # well-formed but impossible, e.g. month 13
            parsed = None
        if parsed is None:
            raise forms.ValidationError("Use an ISO 8601 date-time.", code="invalid")
        return parsed


class IsoTimeFilter(django_filters.Filter):
    field_class = _IsoTimeField
    schema_allow_empty = False


def cursor_page(
    view: Any, queryset: QuerySet, pagination_class: type[CursorPagination], serializer: Any
) -> Any:
    """One cursor page of `queryset` as the response, for lists under a detail route (a
    monitor's results, an incident's timeline)."""
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def apply_filters(
    filterset_class: type[django_filters.FilterSet], request: Any, queryset: QuerySet
):
    """`queryset` filtered by the request's query string, as the filter backend does for a
    list: a bad value is a 400 naming the field."""
    filterset = filterset_class(data=request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs


def list_schema(
    output: Any,
    *,
    summary: str,
    filterset: type[django_filters.FilterSet],
    read_errors: tuple[int, ...] = (401, 403, 404, 429),
) -> Any:
    """The schema of a filtered list and its detail route: the list answers `output` rows
    (or 400 for a bad filter), the detail one `output`."""
    return extend_schema_view(
        list=extend_schema(
            parameters=filter_parameters(filterset),
            responses={200: output(many=True), **errors(400, *read_errors)},
            summary=summary,
        ),
        retrieve=extend_schema(responses={200: output, **errors(*read_errors)}),
    )
