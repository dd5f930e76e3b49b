"""The API's page classes: numbered pages for lists that stay small, cursor pages (built by
`apps.core.lists.cursor`) for lists that grow. Both take `page_size` strictly: a value that is
not a whole number of at least 1 is a 400 naming it (DRF would silently use the default, so a
client's typo went unnoticed); above the list's maximum it is lowered to the maximum."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

PAGE_SIZE_MESSAGE = "A whole number of at least 1."


class StrictPageSize:
    page_size: int | None
    page_size_query_param: str | None
    max_page_size: int | None

    def get_page_size(self, request: Any) -> int | None:
        raw = request.query_params.get(self.page_size_query_param or "")
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: [PAGE_SIZE_MESSAGE]})
        return min(int(raw), self.max_page_size or int(raw))

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)  # type: ignore[misc]
        for parameter in parameters:
            if parameter["name"] in (self.page_size_query_param, "page"):
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Rows per page (default {self.page_size}, at most {self.max_page_size}; "
                    "more is lowered to the maximum)."
                )
        return parameters


class DefaultPagination(StrictPageSize, PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
