"""The console's telemetry pages: an organization's sources, a source's metric charts, the log
lines (filtered, newest first, cursor pages) with a live tail, and a monitor's charts on its
own page (the `console_telemetry` template tag).

Reads go through apps.telemetry.selectors and apps.monitors.selectors. The organization is in
the URL; one the signed-in member does not belong to (in the organization they chose in the
switcher, when they chose one) is a 404, as another tenant's object is everywhere in the
console. Every role reads (viewers too); operators read every organization.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from apps.console import charts
from apps.core.admin import is_operator
from apps.monitors import selectors as monitor_selectors
from apps.monitors.models import ACTIVE_KINDS, Monitor, MonitorKind
from apps.telemetry import selectors
from apps.telemetry.models import Level, LogLine
from apps.tenants.gate.admin import tenant_roles
from apps.tenants.models import Organization


@dataclass(frozen=True)
class Range:
    key: str
    label: str
    seconds: int
    #: bucket width: 60 to 180 points per chart whatever the range
    step: int


RANGES = {
    r.key: r
    for r in (
        Range("1h", "1 h", 3600, 60),
        Range("24h", "24 h", 86400, 600),
        Range("7d", "7 d", 7 * 86400, 3600),
        Range("30d", "30 d", 30 * 86400, 4 * 3600),
    )
}
DEFAULT_RANGE = "24h"
#: log lines per page
PAGE_SIZE = 100


def chosen_range(request: HttpRequest) -> Range:
    """The `range` query parameter (1h, 24h, 7d, 30d); anything else is the default."""
    return RANGES.get(request.GET.get("range", ""), RANGES[DEFAULT_RANGE])


def range_links(request: HttpRequest, current: Range) -> list[dict[str, Any]]:
    """The range selector: plain links (the page's other parameters kept), so it works without
    JavaScript; the current one is marked for assistive technology."""
    links = []
    for r in RANGES.values():
        params = {k: v for k, v in request.GET.items() if k != "range"}
        params["range"] = r.key
        links.append({"label": r.label, "href": f"?{urlencode(params)}", "current": r == current})
    return links


def window(r: Range, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until) of a range ending now, the end rounded up to a whole step so the last
    bucket is the current one."""
    now = now or timezone.now()
    epoch = int(now.timestamp())
    until = datetime.fromtimestamp((epoch // r.step + 1) * r.step, tz=UTC)
    return until - timedelta(seconds=r.seconds), until


def organization_in_view(request: HttpRequest, org_id: Any) -> Organization:
    """The organization of a page's URL: an operator's any one, a member's only one of theirs
    (the switcher's choice, when made). Otherwise a 404, whether it exists or not."""
    org = None
    if is_operator(request) or any(str(pk) == str(org_id) for pk in tenant_roles(request)):
        org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        raise Http404
    return org


def _organizations(request: HttpRequest) -> list[Organization]:
    if is_operator(request):
        return list(Organization.objects.order_by("name"))
    return list(Organization.objects.filter(pk__in=list(tenant_roles(request))).order_by("name"))


def _metric_chart(
    org: Organization, source: str, name: str, r: Range, since: datetime, until: datetime, **kw
) -> dict[str, Any]:
    points = selectors.metric_series(
        org=org, source=source, name=name, since=since, until=until, step=r.step
    )
    return {
        "name": name,
        "points": points,
        "svg": charts.series_chart(
            points, since=since, until=until, step=r.step, label=f"{source} {name}", **kw
        ),
    }


# --- Sources ---------------------------------------------------------------------------------


def sources_view(site: Any, request: HttpRequest) -> HttpResponse:
    """The sources of each organization in view (operators: of the one they pick), with their
    metric names and when each was last seen. One query per organization shown."""
    context: dict[str, Any] = {**site.each_context(request), "title": "Telemetry sources"}
    wanted = request.GET.get("organization", "")
    if wanted:
        orgs = [organization_in_view(request, _uuid_or_404(wanted))]
    elif is_operator(request):
        context["choices"] = _organizations(request)
        return TemplateResponse(request, "admin/console/telemetry_sources.html", context)
    else:
        orgs = _organizations(request)
    context["groups"] = [{"org": org, "sources": selectors.metric_sources(org=org)} for org in orgs]
    return TemplateResponse(request, "admin/console/telemetry_sources.html", context)


def _uuid_or_404(raw: str) -> str:
    try:
        return str(Organization._meta.pk.to_python(raw))
    except ValidationError as exc:  # a malformed id is "not found"
        raise Http404 from exc


def source_view(site: Any, request: HttpRequest, org_id: Any, source: str) -> HttpResponse:
    """One source: a chart per metric name over the chosen range. A source the organization
    never sent is a 404 (another organization's source name too)."""
    org = organization_in_view(request, org_id)
    metrics = selectors.source_metrics(org=org, source=source)
    if not metrics:
        raise Http404
    r = chosen_range(request)
    since, until = window(r)
    chart_list = []
    for metric in metrics:
        chart = _metric_chart(org, source, metric["name"], r, since, until)
        chart["last_seen"] = metric["last_seen"]
        chart_list.append(chart)
    context = {
        **site.each_context(request),
        "title": f"Source {source}",
        "org": org,
        "source": source,
        "charts": chart_list,
        "range": r,
        "ranges": range_links(request, r),
        "since": since,
        "until": until,
        "logs_url": logs_url(org, source=source),
    }
    return TemplateResponse(request, "admin/console/telemetry_source.html", context)


def logs_url(org: Organization, **params: str) -> str:
    url = reverse("admin:telemetry_logs", args=[org.pk])
    return f"{url}?{urlencode(params)}" if params else url


# --- Logs ------------------------------------------------------------------------------------


class LogFilterForm(forms.Form):
    """The log list's filters, as the API's (`GET /api/v1/logs`); times are UTC."""

    source = forms.CharField(max_length=64, required=False)
    level = forms.MultipleChoiceField(
        choices=Level.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    q = forms.CharField(
        label="Words", max_length=200, required=False, help_text="every word, anywhere"
    )
    since = forms.DateTimeField(
        label="Since (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="Until (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_since(self) -> datetime | None:
        return _utc(self.cleaned_data.get("since"))

    def clean_until(self) -> datetime | None:
        return _utc(self.cleaned_data.get("until"))

    def filters(self) -> dict[str, Any]:
        return selectors.log_filters(self.cleaned_data)


def _utc(value: datetime | None) -> datetime | None:
    # A datetime-local input has no zone: the page says its times are UTC, so they are.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value.astimezone(UTC)


def encode_cursor(line: LogLine) -> str:
    return f"{line.ts.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}_{line.pk}"


def decode_cursor(raw: str) -> tuple[datetime, int] | None:
    """`<UTC time>_<id>` of the line a page starts after; None when malformed."""
    stamp, _, ident = raw.partition("_")
    if not ident.isascii() or not ident.isdigit() or len(ident) > 18:
        return None
    try:
        ts = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None
    return ts, int(ident)


def log_page(
    lines: QuerySet[LogLine], *, older: str = "", newer: str = ""
) -> tuple[list[LogLine], str, str]:
    """One page of a filtered list (newest first): lines older than the `older` cursor, or
    newer than the `newer` one, or the newest. Returns (lines, older cursor, newer cursor),
    a cursor empty where there is nothing more that way. One query: a page and one more line,
    read in the (ts, id) order of the list's indexes."""
    if newer:
        mark = decode_cursor(newer)
        if mark is None:
            raise _BadCursor
        ts, ident = mark
        after = lines.filter(Q(ts__gt=ts) | Q(ts=ts, id__gt=ident)).order_by("ts", "id")
        page = list(after[: PAGE_SIZE + 1])
        more_newer = len(page) > PAGE_SIZE
        page = page[:PAGE_SIZE][::-1]
        return (
            page,
            encode_cursor(page[-1]) if page else newer,
            encode_cursor(page[0]) if page and more_newer else "",
        )
    if older:
        mark = decode_cursor(older)
        if mark is None:
            raise _BadCursor
        ts, ident = mark
        lines = lines.filter(Q(ts__lt=ts) | Q(ts=ts, id__lt=ident))
    page = list(lines[: PAGE_SIZE + 1])
    more_older = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return (
        page,
        encode_cursor(page[-1]) if page and more_older else "",
        encode_cursor(page[0]) if page and older else "",
    )


class _BadCursor(Exception):
    pass


def logs_view(site: Any, request: HttpRequest, org_id: Any) -> HttpResponse:
    """An organization's log lines, newest first, by source, level, words and time; `older`
    and `newer` cursors page through them. Bad input is shown on the form, answered 400."""
    org = organization_in_view(request, org_id)
    form = LogFilterForm(request.GET or None)
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Logs",
        "org": org,
        "form": form,
        "lines": [],
        # suggestions for the source box: the sources heard from in the last day (a day of
        # samples read, not the whole history)
        "known_sources": [
            s["source"]
            for s in selectors.metric_sources(org=org, since=timezone.now() - timedelta(days=1))
        ],
        "sources_url": f"{reverse('admin:telemetry_sources')}?organization={org.pk}",
    }
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        filters = form.filters() if form.is_bound else {}
        lines = selectors.log_list(org=org, **filters)
        try:
            page, older, newer = log_page(
                lines, older=request.GET.get("older", ""), newer=request.GET.get("newer", "")
            )
        except _BadCursor:
            context["bad_cursor"] = True
            status = 400
        else:
            kept = [(k, v) for k, v in request.GET.lists() if k not in ("older", "newer")]
            query = [(k, v) for k, values in kept for v in values]
            context.update(
                lines=page,
                older_url=f"?{urlencode([*query, ('older', older)])}" if older else "",
                newer_url=f"?{urlencode([*query, ('newer', newer)])}" if newer else "",
                newest_url=f"?{urlencode(query)}"
                if request.GET.get("older") or request.GET.get("newer")
                else "",
                tail_url=f"{reverse('admin:telemetry_logs_tail', args=[org.pk])}"
                f"?{urlencode(query)}",
                # Live adds lines newer than the newest shown (or than any, with none shown),
                # on the first page only, and not past an end the filters set.
                live_allowed=not any(request.GET.get(k) for k in ("older", "newer", "until")),
                latest_id=max((line.pk for line in page), default=""),
            )
    return TemplateResponse(request, "admin/console/telemetry_logs.html", context, status=status)


def logs_tail_view(site: Any, request: HttpRequest, org_id: Any) -> HttpResponse:
    """The log page's live tail: server-sent events of lines past `after` (or
    `Last-Event-ID`), filtered as the page is, each a table row rendered as the page renders
    one, for the page's script (static/console/logs_live.js) to put on top. Polled and
    time-limited as the API's tail (`/api/v1/logs/tail`, same settings), and read with the
    same selectors; it exists because a browser's EventSource cannot send the API's
    `X-Organization` header, nor can an operator, who belongs to no organization, use it."""
    org = organization_in_view(request, org_id)
    form = LogFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Bad filters.", status=400, content_type="text/plain")
    raw = request.GET.get("after") or request.headers.get("Last-Event-ID") or ""
    if raw and (not raw.isascii() or not raw.isdigit() or len(raw) > 18):
        return HttpResponse("after: a whole number.", status=400, content_type="text/plain")
    after = int(raw) if raw else selectors.log_latest_id(org=org)
    filters = form.filters() if form.is_bound else {}
    filters.pop("since", None)
    filters.pop("until", None)
    lines = selectors.log_list(org=org, **filters)
    response = StreamingHttpResponse(
        _tail(lines, after=after, seconds=settings.TELEMETRY_TAIL_SECONDS),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


TAIL_BATCH = 200


def _tail(lines: QuerySet[LogLine], *, after: int, seconds: int) -> Iterator[str]:
    return selectors.log_tail_events(
        lines, after=after, seconds=seconds, batch_size=TAIL_BATCH, data=_row
    )


def _row(line: LogLine) -> str:
    """The line as the logs table's row, one `data:` field per line of HTML."""
    row = render_to_string("admin/console/telemetry_log_row.html", {"line": line})
    return "\ndata: ".join(row.strip().splitlines())


# --- A monitor's page ------------------------------------------------------------------------


def monitor_charts(request: HttpRequest, monitor: Monitor) -> dict[str, Any]:
    """The charts on a monitor's page over the chosen range: its response time (hourly
    rollups) for a monitor that checks, its metric (with the threshold) for a metric monitor,
    and a link to the source's page with the source's other metrics. The page itself is the
    monitor admin's (which has already refused another tenant's monitor)."""
    r = chosen_range(request)
    since, until = window(r)
    context: dict[str, Any] = {
        "range": r,
        "ranges": range_links(request, r),
        "since": since,
        "until": until,
        "charts": [],
    }
    if monitor.kind in ACTIVE_KINDS:
        hours = [
            _hour_point(row)
            for row in monitor_selectors.latency_hours(monitor=monitor, since=since, until=until)
        ]
        context["charts"].append(
            {
                "name": "response time (ms, hourly)",
                "points": hours,
                "svg": charts.series_chart(
                    hours,
                    since=since,
                    until=until,
                    step=3600,
                    label="response time",
                    unit="ms",
                ),
            }
        )
    config = monitor.config or {}
    if monitor.kind == MonitorKind.METRIC and config.get("source") and config.get("metric"):
        org = monitor.organization
        source = config["source"]
        context["charts"].append(
            _metric_chart(
                org,
                source,
                config["metric"],
                r,
                since,
                until,
                threshold=config.get("threshold"),
            )
        )
        context["source"] = source
        context["source_url"] = reverse("admin:telemetry_source", args=[org.pk, source])
        context["logs_url"] = logs_url(org, source=source)
    return context


def _hour_point(row: Any) -> selectors.Point:
    """An hourly rollup's latency as a series point (min, max and p95 fall back to the average
    where the rollup did not keep them)."""
    avg = row.latency_sum_ms / row.latency_count
    return selectors.Point(
        t=row.bucket_start,
        count=row.latency_count,
        avg=avg,
        min=row.latency_min_ms if row.latency_min_ms is not None else avg,
        max=row.latency_max_ms if row.latency_max_ms is not None else avg,
        p95=row.p95_ms if row.p95_ms is not None else avg,
    )
