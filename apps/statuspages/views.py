"""Public views: the status page, its feed and JSON, subscriptions, and badges.

No login: visitors are anonymous. Public pages are rendered at most every
STATUS_PAGE_CACHE_SECONDS and sent `Cache-Control: public, max-age=...`; private pages need
the password (a signed cookie then remembers it) or the token link, are rendered per request
and sent `private, no-store` so no shared cache keeps them.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.feedgenerator import Rss201rev2Feed
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from apps.core.pauses import gc_held
from apps.plans.metering import check_rate
from apps.statuspages import badges, selectors, services, tokens
from apps.statuspages import cache as page_cache
from apps.statuspages.models import Badge, StatusPage
from apps.statuspages.presenters import snapshot_json
from healthorch.metrics import statuspage_requests_total

_COOKIE_SALT = "healthorch.statuspages.access"
_COOKIE_AGE = 30 * 24 * 3600
PASSWORD_TRIES_PER_MINUTE = 10


def _client(request: HttpRequest) -> str:
    return BaseThrottle().get_ident(request)


def _cookie_name(page: StatusPage) -> str:
    return f"sp_{page.pk.hex[:12]}"


def _has_access(request: HttpRequest, page: StatusPage) -> bool:
    if not page.private:
        return True
    token = request.GET.get("token")
    if token and hmac.compare_digest(token, page.access_token):
        return True
    remembered = request.get_signed_cookie(
        _cookie_name(page), default=None, salt=_COOKIE_SALT, max_age=_COOKIE_AGE
    )
    return remembered is not None and hmac.compare_digest(
        remembered, tokens.access_fingerprint(page)
    )


def _grant(response: HttpResponse, request: HttpRequest, page: StatusPage) -> HttpResponse:
    response.set_signed_cookie(
        _cookie_name(page),
        tokens.access_fingerprint(page),
        salt=_COOKIE_SALT,
        max_age=_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
        path=reverse("statuspage", kwargs={"slug": page.slug}),
    )
    return response


def _cache_headers(response: HttpResponse, page: StatusPage) -> HttpResponse:
    if page.private:
        response["Cache-Control"] = "private, no-store"
    else:
        response["Cache-Control"] = f"public, max-age={settings.STATUS_PAGE_CACHE_SECONDS}"
    return response


def _page_or_404(slug: str) -> StatusPage:
    page = selectors.page_by_slug(slug=slug)
    if page is None:
        raise Http404("No such status page")
    return page


def _refuse(request: HttpRequest, page: StatusPage, error: str = "", status: int = 401):
    html = render_to_string(
        "statuspages/password.html", {"page": page, "error": error}, request=request
    )
    response = HttpResponse(html, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _render(page: StatusPage, fmt: str, build) -> tuple[Any, bool]:
    """The page's rendering in `fmt`, from the shared cache for public pages."""
    if not page.private:
        cached = page_cache.get(page.slug, fmt)
        if cached is not None:
            statuspage_requests_total.labels(format=fmt, cache="hit").inc()
            return cached, True
    # Drawing thousands of bars allocates enough to trigger a full collection mid-render
    # (apps.core.pauses): a visitor would wait for it; it runs right after instead.
    with gc_held():
        value = build()
    if not page.private:
        page_cache.put(page.slug, fmt, value)
    statuspage_requests_total.labels(format=fmt, cache="private" if page.private else "miss").inc()
    return value, False


@require_GET
def status_page(request: HttpRequest, slug: str) -> HttpResponse:
    page = _page_or_404(slug)
    if not _has_access(request, page):
        return _refuse(request, page)
    if page.private and request.GET.get("token"):
        # Trade the token in the address bar for a cookie, so it does not linger in history
        # or leak through links the visitor follows.
        return _grant(HttpResponseRedirect(request.path), request, page)

    def build() -> str:
        snapshot = selectors.page_snapshot(page=page)
        return render_to_string("statuspages/page.html", {"s": snapshot, "page": page})

    html, hit = _render(page, "html", build)
    response = HttpResponse(html)
    response["X-Cache"] = "hit" if hit else "miss"
    return _cache_headers(response, page)


@require_GET
def status_json(request: HttpRequest, slug: str) -> HttpResponse:
    page = _page_or_404(slug)
    if not _has_access(request, page):
        response = HttpResponse(
            json.dumps({"error": "Authentication required", "detail": "This page is private."}),
            status=401,
            content_type="application/json",
        )
        response["Cache-Control"] = "private, no-store"
        return response
    body, _ = _render(
        page,
        "json",
        lambda: json.dumps(snapshot_json(selectors.page_snapshot(page=page), _base(request))),
    )
    response = HttpResponse(body, content_type="application/json")
    if not page.private:  # public data: any site may embed it
        response["Access-Control-Allow-Origin"] = "*"
    return _cache_headers(response, page)


def _base(request: HttpRequest) -> str:
    return (settings.HEALTHORCH_PUBLIC_URL or request.build_absolute_uri("/")).rstrip("/")


@require_GET
def status_rss(request: HttpRequest, slug: str) -> HttpResponse:
    page = _page_or_404(slug)
    if not _has_access(request, page):
        response = HttpResponse("This page is private.", status=401, content_type="text/plain")
        response["Cache-Control"] = "private, no-store"
        return response

    def build() -> str:
        snapshot = selectors.page_snapshot(page=page)
        base = _base(request)
        link = base + reverse("statuspage", kwargs={"slug": page.slug})
        feed = Rss201rev2Feed(
            title=f"{page.name} status", link=link, description=f"Incidents of {page.name}"
        )
        items = []
        for view in snapshot.active_incidents + snapshot.history:
            incident = view.incident
            anchor = f"{link}#incident-{incident.pk}"
            # Not the incident's description: rules fill it with internal detail (targets,
            # error messages) that a public feed should not carry.
            items.append((incident.opened_at, f"{view.title}: started", view.title, anchor))
            for update in view.updates:
                items.append(
                    (
                        update.posted_at,
                        f"{view.title}: {update.get_status_display()}",
                        update.message,
                        f"{anchor}-{update.pk}",
                    )
                )
            if view.postmortem is not None:
                items.append(
                    (
                        view.postmortem.updated_at,
                        f"{view.title}: postmortem",
                        view.postmortem.body,
                        f"{anchor}-postmortem",
                    )
                )
        for at, title, description, url in sorted(items, key=lambda i: i[0], reverse=True)[:50]:
            feed.add_item(title=title, link=url, description=description, pubdate=at, unique_id=url)
        return feed.writeString("utf-8")

    body, _ = _render(page, "rss", build)
    return _cache_headers(
        HttpResponse(body, content_type="application/rss+xml; charset=utf-8"), page
    )


# The password form is posted from a page that may come from the shared cache, where no
# per-visitor CSRF token can live; a forged post could only log the visitor into a page.
@csrf_exempt
@require_POST
def status_access(request: HttpRequest, slug: str) -> HttpResponse:
    page = _page_or_404(slug)
    try:
        check_rate(
            ident=f"status-password:{page.pk}:{_client(request)}",
            per_minute=PASSWORD_TRIES_PER_MINUTE,
        )
    except Throttled:
        return _refuse(request, page, "Too many attempts. Wait a minute and try again.", 429)
    password = request.POST.get("password", "")
    if not page.password_hash or not check_password(password, page.password_hash):
        return _refuse(request, page, "That password is not right.", 403)
    target = reverse("statuspage", kwargs={"slug": page.slug})
    return _grant(HttpResponseRedirect(target), request, page)


def _message(request, page, title: str, text: str, status: int = 200) -> HttpResponse:
    html = render_to_string(
        "statuspages/message.html",
        {"page": page, "title": title, "text": text},
        request=request,
    )
    response = HttpResponse(html, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


# Posted from a (possibly shared-cached) public page, so no CSRF token; the worst a forged
# post does is send a confirmation email, which the double opt-in makes harmless.
@csrf_exempt
@require_POST
def subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    page = _page_or_404(slug)
    if not _has_access(request, page):
        return _refuse(request, page)
    try:
        check_rate(
            ident=f"status-subscribe:{_client(request)}",
            per_minute=settings.STATUS_SUBSCRIBE_PER_MINUTE,
        )
    except Throttled:
        return _message(
            request, page, "Too many requests", "Please wait a minute and try again.", 429
        )
    email = request.POST.get("email", "").strip()
    try:
        validate_email(email)
    except ValidationError:
        return _message(
            request, page, "That address does not look right", "Go back and check it.", 400
        )
    services.subscription_request(page=page, email=email, link_base=_base(request))
    return _message(
        request,
        page,
        "Check your inbox",
        f"If {email} is not subscribed yet, we sent it a link to confirm the subscription.",
    )


@dataclass(frozen=True)
class _Link:
    """What a subscriber's emailed link does: `act` on its token, with the words of its pages
    (`done_text` formatted with the subscriber's `email` and the page's `page` name)."""

    act: Callable[..., Any]
    form_title: str
    button: str
    expired_text: str
    done_title: str
    done_text: str


def _follow(request: HttpRequest, slug: str, token: str, link: _Link) -> HttpResponse:
    # GET shows a button and acts on nothing, so mail scanners that open links change nothing;
    # POST acts. A token from another page's email is not valid here.
    page = _page_or_404(slug)
    if request.method == "GET":
        return _action_form(request, page, link.form_title, link.button)
    subscriber = link.act(token=token)
    if subscriber is None or subscriber.page_id != page.pk:
        return _message(request, page, "This link is not valid", link.expired_text, 400)
    text = link.done_text.format(email=subscriber.email, page=page.name)
    return _message(request, page, link.done_title, text)


_CONFIRM = _Link(
    services.subscriber_confirm,
    "Confirm your subscription",
    "Confirm",
    expired_text="It may have expired.",
    done_title="Subscribed",
    done_text="{email} will receive updates of {page}.",
)
_UNSUBSCRIBE = _Link(
    services.subscriber_unsubscribe,
    "Stop receiving updates",
    "Unsubscribe",
    expired_text="",
    done_title="Unsubscribed",
    done_text="{email} will receive no more updates.",
)


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """GET shows a button, POST confirms: mail scanners that open links do not subscribe."""
    return _follow(request, slug, token, _CONFIRM)


@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """GET shows a button, POST unsubscribes (also RFC 8058 one-click from mail clients)."""
    return _follow(request, slug, token, _UNSUBSCRIBE)


def _action_form(request, page, title: str, button: str) -> HttpResponse:
    html = render_to_string(
        "statuspages/action.html",
        {"page": page, "title": title, "button": button},
        request=request,
    )
    response = HttpResponse(html)
    response["Cache-Control"] = "private, no-store"
    return response


# --- Badges --------------------------------------------------------------------------------


def _badge_data(token, kind: str, period: str) -> tuple[badges.BadgeData, int]:
    if kind != "status" and period not in badges.PERIODS:
        label = "uptime" if kind == "uptime" else "response"
        return badges.BadgeData(label, "bad period", "lightgrey"), 400
    try:
        token = uuid.UUID(str(token))
    except ValueError:
        return badges.unknown(kind, period), 200
    badge = Badge.objects.select_related("monitor").filter(token=token).first()
    if badge is None:
        return badges.unknown(kind, period), 200
    monitor = badge.monitor
    if kind == "uptime":
        return badges.uptime_badge(monitor, period), 200
    if kind == "response":
        return badges.response_badge(monitor, period), 200
    return badges.status_badge(monitor), 200


def _badge_headers(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={settings.BADGE_CACHE_SECONDS}"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def badge_svg(request: HttpRequest, token, kind: str) -> HttpResponse:
    default = "24h" if kind == "response" else "30d"
    data, status = _badge_data(token, kind, request.GET.get("period", default))
    response = HttpResponse(badges.svg(data), content_type="image/svg+xml", status=status)
    return _badge_headers(response)


@require_GET
def badge_shields(request: HttpRequest, token) -> HttpResponse:
    """Shields' endpoint format; `?type=status|uptime|response` and `&period=` pick the badge."""
    kind = request.GET.get("type", "status")
    if kind not in ("status", "uptime", "response"):
        kind = "status"
    default = "24h" if kind == "response" else "30d"
    data, status = _badge_data(token, kind, request.GET.get("period", default))
    response = HttpResponse(
        json.dumps(data.shields()), content_type="application/json", status=status
    )
    return _badge_headers(response)
