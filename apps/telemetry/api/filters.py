"""Query-string parameters of the log list and the live tail (validated here, applied by
`selectors.log_list`)."""

from __future__ import annotations

from apps.core.lists import (
    CHAR_MESSAGES,
    ChoiceListFilter,
    FirstErrorFilterSet,
    IsoTimeFilter,
    TextFilter,
    document,
)
from apps.telemetry.models import Level


class LogFilter(FirstErrorFilterSet):
    source = document(TextFilter(max_length=64, error_messages=CHAR_MESSAGES), "source, exactly")
    level = document(
        ChoiceListFilter(allowed=Level.values),
        "one level or several, comma-separated",
        enum=Level.values,
    )
    q = document(
        TextFilter(max_length=200, error_messages=CHAR_MESSAGES),
        "words the message must all contain (full-text, case-insensitive)",
    )
    since = document(IsoTimeFilter(), "at or after (ISO 8601)")
    until = document(IsoTimeFilter(), "before (ISO 8601)")


class TailFilter(FirstErrorFilterSet):
    source = LogFilter.base_filters["source"]
    level = LogFilter.base_filters["level"]
    q = LogFilter.base_filters["q"]
