"""Email subscriptions to a status page: the double opt-in requests and links, and queueing
the emails (sent by emails.py inside the Celery tasks).

A subscription request never says whether the address was already subscribed (that would let
anyone probe a page's audience): the answer is always "check your inbox". Re-asking with a
pending address re-sends the confirmation; a confirmed one gets nothing new.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.statuspages import tasks, tokens
from apps.statuspages.models import StatusPage, Subscriber

logger = logging.getLogger(__name__)


def enqueue(task_name: str, *args: Any) -> None:
    """Send a task after the transaction commits; a broker hiccup is logged, never raised."""

    def send() -> None:
        try:
            getattr(tasks, task_name).delay(*args)
        except Exception:
            logger.exception("could not enqueue", extra={"task": task_name, "task_args": args})

    transaction.on_commit(send)


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
