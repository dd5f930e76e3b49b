"""Stripe webhooks: two doors (dj-stripe's endpoint and /billing/webhook), one handling.

Both verify the signature before anything is written (a forged or corrupted request is a 400
and leaves no row), then hand the event to dj-stripe's `Event.process`, which stores the Event
once per id and fires its per-type signal; our receivers apply the plan rules
(services.event_handle). A replayed event id is found by dj-stripe and fires nothing.

For the six event types we handle, dj-stripe's own mirror sync (re-fetching and storing the
Session, Subscription or Invoice with all its relations) is disconnected: our handler fetches
the subscription itself, under a row lock, and the plan depends only on that. It also keeps
one webhook at one or two Stripe calls instead of half a dozen.
"""

from __future__ import annotations

import json
import logging

import stripe
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe import event_handlers, signals
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.views import ProcessWebhookView

from apps.billing import gateway, services

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300


def _on_event(sender, event: Event, **kwargs) -> None:
    services.event_handle(
        event_id=event.id, event_type=event.type, obj=(event.data or {}).get("object") or {}
    )


def _log_unhandled(sender, instance: WebhookEventTrigger, **kwargs) -> None:
    event = instance.event
    if event is not None and event.type not in services.HANDLED_EVENTS:
        logger.info("stripe event not used", extra={"event": event.id, "type": event.type})


def connect() -> None:
    for name in services.HANDLED_EVENTS:
        signal = signals.WEBHOOK_SIGNALS[name]
        signal.disconnect(event_handlers.handle_customer_subscription_event, sender=Event)
        signal.disconnect(event_handlers.handle_other_event, sender=Event)
        signal.connect(_on_event, sender=Event, dispatch_uid=f"healthorch-billing-{name}")
    signals.webhook_post_process.connect(_log_unhandled, dispatch_uid="healthorch-billing-log")


def signature_ok(*, body: bytes, header: str | None, secret: str, tolerance: int) -> bool:
    if not header or not secret:
        return False
    try:
        stripe.WebhookSignature.verify_header(body.decode("utf-8"), header, secret, tolerance)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return False
    return True


def _error(status: int, title: str, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"error": title, "detail": detail, "code": code}, status=status)


def _unavailable(detail: str, code: str) -> JsonResponse:
    return _error(503, "Billing unavailable", detail, code)


@csrf_exempt
@require_POST
@transaction.non_atomic_requests
def billing_webhook(request: HttpRequest) -> HttpResponse:
    """`POST /billing/webhook`: events signed with DJSTRIPE_WEBHOOK_SECRET."""
    secret = gateway.webhook_secret()
    if not gateway.is_configured() or not secret:
        return _unavailable(
            "billing not configured: set STRIPE_TEST_SECRET_KEY and DJSTRIPE_WEBHOOK_SECRET.",
            "billing_not_configured",
        )
    header = request.headers.get("Stripe-Signature")
    if not signature_ok(
        body=request.body, header=header, secret=secret, tolerance=TOLERANCE_SECONDS
    ):
        logger.warning("stripe webhook signature rejected", extra={"path": request.path})
        return _error(400, "Invalid signature", "The Stripe-Signature does not match.", "bad_sig")
    try:
        data = json.loads(request.body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "id" not in data or "type" not in data:
        return _error(400, "Invalid input", "The body is not a Stripe event.", "not_an_event")
    try:
        with transaction.atomic():
            event = Event.process(data=data, api_key=gateway.api_key())
    except gateway.BillingUnavailable as exc:
        return _unavailable(exc.detail, exc.code)
    except stripe.StripeError as exc:
        logger.warning("stripe webhook processing failed", extra={"error": str(exc)[:300]})
        return _unavailable(
            "Stripe could not be reached; deliver again later.", "stripe_unavailable"
        )
    if data["type"] not in services.HANDLED_EVENTS:
        logger.info("stripe event not used", extra={"event": data["id"], "type": data["type"]})
    return JsonResponse({"received": True, "event": event.id})


@method_decorator(transaction.non_atomic_requests, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
class VerifiedWebhookView(ProcessWebhookView):
    """dj-stripe's endpoint (`/stripe/webhook/<uuid>/`), verifying before it stores anything.

    dj-stripe itself records a WebhookEventTrigger for every request, forged ones included;
    checking the signature first keeps garbage out of the database.
    """

    def post(self, request: HttpRequest, uuid) -> HttpResponse:
        if "stripe-signature" not in request.headers:
            return HttpResponse(status=400)
        endpoint = get_object_or_404(WebhookEndpoint, djstripe_uuid=uuid)
        if not signature_ok(
            body=request.body,
            header=request.headers.get("Stripe-Signature"),
            secret=endpoint.secret,
            tolerance=endpoint.djstripe_tolerance,
        ):
            logger.warning("stripe webhook signature rejected", extra={"path": request.path})
            return HttpResponse(status=400)
        try:
            return super().post(request, uuid)
        except gateway.BillingUnavailable as exc:
            # The trigger row keeps the error; the event itself was rolled back, and Stripe
            # delivers it again.
            return _unavailable(exc.detail, exc.code)
