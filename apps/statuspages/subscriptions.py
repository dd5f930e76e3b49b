"""Email subscriptions to a status page: double opt-in, signed links, the update fan-out.

A subscription request never says whether the address was already subscribed (that would let
anyone probe a page's audience): the answer is always "check your inbox". Re-asking with a
pending address re-sends the confirmation; a confirmed one gets nothing new.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.statuspages import tokens
from apps.statuspages.models import IncidentUpdate, StatusPage, StatusPageMonitor, Subscriber
from apps.statuspages.selectors import public_title
from healthorch.metrics import statuspage_emails_sent_total

logger = logging.getLogger(__name__)


def enqueue(task_name: str, *args: Any) -> None:
    """Send a task after the transaction commits; a broker hiccup is logged, never raised."""
    from apps.statuspages import tasks

    def send() -> None:
        try:
            getattr(tasks, task_name).delay(*args)
        except Exception:
            logger.exception("could not enqueue", extra={"task": task_name, "args": args})

    transaction.on_commit(send)


def _link(subscriber: Subscriber, name: str, token: str) -> str:
    base = (settings.HEALTHORCH_PUBLIC_URL or subscriber.link_base).rstrip("/")
    return base + reverse(name, kwargs={"slug": subscriber.page.slug, "token": token})


@transaction.atomic
def subscription_request(*, page: StatusPage, email: str, link_base: str = "") -> Subscriber:
    """Record a pending subscription and send the confirmation email (after commit).

    A confirmed, still-active subscriber is left alone; an unsubscribed one starts over and
    must confirm again.
    """
    email = email.strip().lower()
    subscriber, created = Subscriber.objects.select_for_update().get_or_create(
        page=page,
        email=email,
        defaults={"organization_id": page.organization_id, "link_base": link_base},
    )
    if not created and subscriber.active:
        return subscriber
    if not created:
        subscriber.confirmed_at = None
        subscriber.unsubscribed_at = None
        subscriber.link_base = link_base or subscriber.link_base
        subscriber.save(update_fields=["confirmed_at", "unsubscribed_at", "link_base"])
    enqueue("send_confirmation", str(subscriber.pk))
    return subscriber


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


def _by_token(token: str, purpose: str, max_age: int | None = None) -> Subscriber | None:
    """The subscriber a link's token names, or None (forged, expired, another use, gone)."""
    subscriber_id = tokens.read_subscriber_token(token, purpose, max_age)
    if subscriber_id is None:
        return None
    return Subscriber.objects.select_related("page").filter(pk=subscriber_id).first()


def subscriber_confirm(*, token: str) -> Subscriber | None:
    """Confirm by the emailed link; None for a bad or expired link. Idempotent."""
    subscriber = _by_token(token, "confirm", tokens.CONFIRM_MAX_AGE)
    if subscriber is None:
        return None
    # Compare-and-set: two clicks (or a mail scanner and the visitor) confirm once.
    Subscriber.objects.filter(pk=subscriber.pk, confirmed_at__isnull=True).update(
        confirmed_at=timezone.now(), unsubscribed_at=None
    )
    subscriber.refresh_from_db()
    return subscriber


def subscriber_unsubscribe(*, token: str) -> Subscriber | None:
    """Stop emails by the link in any update email; None for a bad link. Idempotent."""
    subscriber = _by_token(token, "unsubscribe")
    if subscriber is None:
        return None
    Subscriber.objects.filter(pk=subscriber.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=timezone.now()
    )
    subscriber.refresh_from_db()
    return subscriber


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
