"""The emails a status page sends: the subscription confirmation and an update's fan-out to
the confirmed subscribers. Each runs inside a Celery task (tasks.py); subscriptions.py, which
records the requests and queues those tasks, is kept apart so the tasks do not import it back.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse
from django.utils import timezone

from apps.statuspages import tokens
from apps.statuspages.models import IncidentUpdate, StatusPage, StatusPageMonitor, Subscriber
from apps.statuspages.selectors import public_title
from healthorch.metrics import statuspage_emails_sent_total

logger = logging.getLogger(__name__)


def _link(subscriber: Subscriber, name: str, token: str) -> str:
    base = (settings.HEALTHORCH_PUBLIC_URL or subscriber.link_base).rstrip("/")
    return base + reverse(name, kwargs={"slug": subscriber.page.slug, "token": token})


def confirmation_send(*, subscriber_id: str) -> bool:
    """Email the confirm link to a pending subscriber. False (nothing sent) once confirmed or
    gone, so a redelivered task does not mail twice after the visitor confirmed."""
    subscriber = (
        Subscriber.objects.select_related("page")
        .filter(pk=subscriber_id, confirmed_at__isnull=True)
        .first()
    )
    if subscriber is None:
        return False
    page = subscriber.page
    confirm = _link(
        subscriber, "statuspage-confirm", tokens.subscriber_token(subscriber.pk, "confirm")
    )
    body = (
        f"Someone (hopefully you) asked to receive incident updates from {page.name}.\n\n"
        f"Confirm your subscription:\n{confirm}\n\n"
        "The link works for 7 days. If you did not ask for this, ignore this email: "
        "nothing will be sent to you.\n"
    )
    try:
        EmailMessage(
            subject=f"Confirm your subscription to {page.name} status updates",
            body=body,
            to=[subscriber.email],
        ).send()
    except Exception:
        statuspage_emails_sent_total.labels(kind="confirmation", outcome="failed").inc()
        raise  # the visitor can ask again; the task's failure is logged by Celery
    statuspage_emails_sent_total.labels(kind="confirmation", outcome="sent").inc()
    return True


def _recipients(update: IncidentUpdate) -> list[Subscriber]:
    incident = update.incident
    pages = StatusPage.objects.filter(organization_id=incident.organization_id, published=True)
    if incident.monitor_id is not None:
        pages = pages.filter(sections__items__monitor_id=incident.monitor_id)
    subscribers = (
        Subscriber.objects.filter(
            page__in=pages.values("pk"), confirmed_at__isnull=False, unsubscribed_at__isnull=True
        )
        .select_related("page")
        .order_by("email", "created_at")
    )
    seen: set[str] = set()
    out = []
    for subscriber in subscribers:  # one email per address even if it follows two pages
        if subscriber.email not in seen:
            seen.add(subscriber.email)
            out.append(subscriber)
    return out


def update_fan_out(*, update_id: str) -> int:
    """Email an update to the confirmed subscribers of the pages that show it; returns how
    many were sent. The update is claimed first (compare-and-set on `notified_at`), so two
    workers given the same task send it once; delivery is at most once per address."""
    now = timezone.now()
    claimed = IncidentUpdate.objects.filter(
        pk=update_id, notify=True, notified_at__isnull=True
    ).update(notified_at=now)
    if not claimed:
        return 0
    update = IncidentUpdate.objects.select_related("incident__monitor").get(pk=update_id)
    recipients = _recipients(update)
    incident = update.incident
    # The monitor's public name on each page (one query), so emails say what the page says.
    shown = (
        dict(
            StatusPageMonitor.objects.filter(monitor_id=incident.monitor_id).values_list(
                "section__page_id", "display_name"
            )
        )
        if incident.monitor_id
        else {}
    )
    internal = incident.monitor.name if incident.monitor_id else ""
    messages = []
    for subscriber in recipients:
        page = subscriber.page
        title = public_title(
            incident, {incident.monitor_id: (internal, shown.get(page.pk) or internal)}
        )
        unsubscribe = _link(
            subscriber,
            "statuspage-unsubscribe",
            tokens.subscriber_token(subscriber.pk, "unsubscribe"),
        )
        base = (settings.HEALTHORCH_PUBLIC_URL or subscriber.link_base).rstrip("/")
        page_url = base + reverse("statuspage", kwargs={"slug": page.slug})
        body = (
            f"{title}\n"
            f"{update.get_status_display()} - {update.posted_at:%Y-%m-%d %H:%M} UTC\n\n"
            f"{update.message}\n\n"
            f"Status page: {page_url}\n\n"
            f"Unsubscribe: {unsubscribe}\n"
        )
        message = EmailMessage(
            subject=f"[{page.name}] {update.get_status_display()}: {title}",
            body=body,
            to=[subscriber.email],
            headers={"List-Unsubscribe": f"<{unsubscribe}>"},
        )
        messages.append(message)
    sent = 0
    if messages:
        try:
            with get_connection() as connection:  # one SMTP session for the whole batch
                sent = connection.send_messages(messages) or 0
        except Exception:
            statuspage_emails_sent_total.labels(kind="update", outcome="failed").inc(len(messages))
            # At most once: the claim stands, so a retry cannot mail the first recipients
            # twice; the failure is logged with the update id for an operator.
            logger.exception(
                "status update email failed",
                extra={"update": str(update_id), "recipients": len(messages)},
            )
    if sent:
        statuspage_emails_sent_total.labels(kind="update", outcome="sent").inc(sent)
    IncidentUpdate.objects.filter(pk=update_id).update(recipients=sent)
    logger.info(
        "status update emailed",
        extra={"update": str(update_id), "sent": sent, "recipients": len(messages)},
    )
    return sent
