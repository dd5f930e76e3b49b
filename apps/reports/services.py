"""Writes: report settings, the per-member opt-out, and the scheduled report mail."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import escape

from apps.plans.models import Feature
from apps.plans.selectors import entitlements_for
from apps.reports import periods, selectors
from apps.reports.models import ReportOptOut, ReportSettings, Schedule
from apps.tenants.models import Membership, Organization, Role

logger = logging.getLogger(__name__)


def report_settings_update(*, org: Organization, data: dict[str, Any]) -> ReportSettings:
    """Change some of the organization's report settings (validated by the caller)."""
    with transaction.atomic():
        row, _ = ReportSettings.objects.select_for_update().get_or_create(organization=org)
        for name, value in data.items():
            setattr(row, name, value)
        row.full_clean()
        row.save()
    return row


def report_opt_out(*, org: Organization, user: Any, opted_out: bool) -> bool:
    """Stop (or resume) mailing the scheduled report to this member. Idempotent."""
    if opted_out:
        try:
            with transaction.atomic():
                ReportOptOut.objects.create(organization=org, user=user)
        except IntegrityError:
            pass  # already opted out
    else:
        ReportOptOut.objects.filter(organization=org, user=user).delete()
    return opted_out


def _pdf_link(period: periods.Period, start_day) -> str:
    query = urlencode({"period": period.kind, "start": start_day.isoformat(), "format": "pdf"})
    base = django_settings.HEALTHORCH_PUBLIC_URL.rstrip("/")
    return f"{base}/api/v1/reports/sla?{query}"


def _table(report: dict) -> tuple[str, str]:
    head = ["Monitor", "Availability %", "Target %", "SLA", "p95 ms", "Incidents", "Score"]
    rows = [
        [
            r["monitor"]["name"],
            "-" if r["availability_pct"] is None else f"{r['availability_pct']:.3f}",
            f"{r['sla']['target_pct']:g}",
            {True: "met", False: "NOT MET", None: "-"}[r["sla"]["met"]],
            "-" if r["response_ms"]["p95"] is None else f"{r['response_ms']['p95']:.0f}",
            str(r["incidents"]["count"]),
            "-" if r["health_score"] is None else str(r["health_score"]),
        ]
        for r in report["monitors"]
    ]
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    text = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]
    )
    html_rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    html = (
        '<table border="1" cellpadding="4" cellspacing="0"><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + f"</tr>{html_rows}</table>"
    )
    return text, html


def _claim(row: ReportSettings, period_start) -> bool:
    """Compare-and-set on last_sent_period: of two beat runs (or workers) racing for the same
    period, exactly one updates the row and mails; the other sees 0 rows changed."""
    return bool(
        ReportSettings.objects.filter(pk=row.pk, last_sent_period=row.last_sent_period)
        .exclude(last_sent_period=period_start)
        .update(last_sent_period=period_start)
    )


def scheduled_report_send(*, org: Organization, now: datetime | None = None) -> int:
    """Mail the organization's last complete period's SLA table to its owners who did not opt
    out, once per period. Returns the number of recipients (0 when nothing was due)."""
    now = now or timezone.now()
    if not entitlements_for(org).has(Feature.SLA_REPORTS):
        return 0
    row, _ = ReportSettings.objects.get_or_create(organization=org)
    if row.schedule == Schedule.OFF:
        return 0
    tz = selectors.tz_of(row)
    period = periods.previous(row.schedule, now, tz)
    start_day = period.start.astimezone(tz).date()
    if row.last_sent_period == start_day:
        return 0
    opted_out = ReportOptOut.objects.for_org(org).values_list("user_id", flat=True)
    recipients = sorted(
        Membership.objects.for_org(org)
        .filter(role=Role.OWNER)
        .exclude(user_id__in=opted_out)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not _claim(row, start_day):
        return 0
    if not recipients:
        return 0
    report = selectors.sla_report(
        org=org,
        period=period,
        monitors=selectors.report_monitors(org=org),
        settings=row,
        now=now,
    )
    text, html = _table(report)
    link = _pdf_link(period, start_day)
    summary = report["summary"]
    avail = summary["availability_pct"]
    headline = (
        f"Availability {avail:.3f} % against a target of {summary['sla']['target_pct']:g} % "
        f"({'met' if summary['sla']['met'] else 'NOT met'})."
        if avail is not None
        else "No checks were recorded in this period."
    )
    missed = [r["monitor"]["name"] for r in report["monitors"] if r["sla"]["met"] is False]
    if missed:
        headline += (
            f" {len(missed)} monitor(s) missed their availability target: "
            f"{', '.join(missed[:10])}{' and more' if len(missed) > 10 else ''}."
        )
    subject = f"[healthorch] SLA report for {org.name}, {period.label}" + (
        f": {len(missed)} monitor(s) missed the target" if missed else ""
    )
    body = (
        f"{org.name}: SLA report for {period.label}.\n{headline}\n\n{text}\n\n"
        f"PDF: {link}\n\nYou receive this as an owner of {org.name}; opt out with "
        "DELETE /api/v1/reports/subscription.\n"
    )
    mail = EmailMultiAlternatives(subject=subject, body=body, to=recipients)
    mail.attach_alternative(
        f"<p>{escape(org.name)}: SLA report for {escape(period.label)}.</p>"
        f'<p>{escape(headline)}</p>{html}<p><a href="{escape(link)}">PDF report</a></p>',
        "text/html",
    )
    try:
        mail.send(fail_silently=False)
    except Exception:
        # Give the period back so the next run retries it.
        ReportSettings.objects.filter(pk=row.pk).update(last_sent_period=row.last_sent_period)
        raise
    logger.info(
        "sla report mailed",
        extra={"organization": org.slug, "period": period.label, "recipients": len(recipients)},
    )
    return len(recipients)


def scheduled_reports_send(*, now: datetime | None = None) -> int:
    """The beat sweep: every organization whose report is due (a sent period is skipped with
    one lookup, so a daily run over every organization stays cheap)."""
    sent = 0
    orgs = Organization.objects.select_related("plan").order_by("pk")
    for org in orgs:
        try:
            sent += scheduled_report_send(org=org, now=now)
        except Exception:
            logger.exception("sla report failed", extra={"organization": org.slug})
    return sent
