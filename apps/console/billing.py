"""The console's Billing page, for an organization's owners and admins: the plan, the
subscription's state, this period's usage against each limit (the same report as
`GET /api/v1/usage`), the plans with an Upgrade button (Stripe Checkout) and Manage billing (the
Stripe portal); then the page Checkout returns to, which waits for Stripe's webhook to change the
plan and says so until it has.

Every write goes through apps.billing.services, as the API's /billing/upgrade and
/billing/portal do. The organization is one the signed-in user owns or administers: another
organization's id is a 404, a member's or viewer's role a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from apps.billing import selectors as billing_selectors
from apps.billing import services as billing_services
from apps.billing.models import ALIVE_STATUSES
from apps.core.admin import refusal_text, refusals
from apps.plans import selectors as plan_selectors
from apps.plans.models import Limit
from apps.tenants.gate.admin import tenant_roles
from apps.tenants.models import Organization, Role

MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
#: the session key remembering which plan a Checkout was started for, per organization
PENDING_KEY = "console_billing_pending"

_LIMIT_LABELS = {**dict(Limit.choices), "checks_executed": "Checks run this month"}
_USAGE_LABELS = {
    "monitors": "Active monitors",
    "members": "Members",
    "notifications_sent": "Notifications sent this month",
    "checks_executed": "Checks run this month",
    "metric_samples": "Metric samples this month",
    "api_requests": "API requests this month",
}


def organization_for(request: HttpRequest) -> tuple[Organization | None, list[Organization]]:
    """(the organization whose billing is shown, the ones to choose from when it is not clear).

    `?organization=<id>` (or the form's field) names it; otherwise the only organization in
    view. One the user is not a member of is a 404; one where they are not owner or admin, 403.
    """
    roles = tenant_roles(request)
    wanted = request.POST.get("organization") or request.GET.get("organization") or ""
    if wanted:
        matches = [org for org in roles if str(org) == wanted]
        if not matches:
            raise Http404
        chosen = matches[0]
    elif len(roles) == 1:
        chosen = next(iter(roles))
    else:
        manageable = [org for org, role in roles.items() if role in MANAGERS]
        return None, list(Organization.objects.filter(pk__in=manageable).order_by("name"))
    if roles[chosen] not in MANAGERS:
        raise PermissionDenied
    return Organization.objects.select_related("plan").get(pk=chosen), []


def _usage_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, figures in report["usage"].items():
        used, limit = figures["used"], figures["limit"]
        share = min(100, round(100 * used / limit)) if limit else None
        rows.append(
            {
                "key": key,
                "label": _USAGE_LABELS.get(key, key.replace("_", " ")),
                "used": used,
                "limit": limit,
                "share": share,
                "level": "full"
                if share is not None and share >= 100
                else "high"
                if share is not None and share >= 80
                else "",
            }
        )
    return rows


def _plan_cards(current: str, *, can_upgrade: bool) -> list[dict[str, Any]]:
    cards = []
    for plan in plan_selectors.plan_list():
        cards.append(
            {
                "plan": plan,
                "price": plan.monthly_price_cents / 100,
                "current": plan.code == current,
                "upgradable": can_upgrade and plan.code != current and plan.monthly_price_cents > 0,
                "limits": [
                    ("monitors", plan.monitors),
                    ("members", plan.members),
                    ("checks every", plan.min_interval_seconds),
                    ("notifications a month", plan.notifications_per_month),
                ],
            }
        )
    return cards


def billing_view(site: Any, request: HttpRequest) -> HttpResponse:
    org, choices = organization_for(request)
    context: dict[str, Any] = {**site.each_context(request), "title": "Billing"}
    if org is None:
        context["choices"] = choices
        return TemplateResponse(request, "admin/console/billing.html", context)
    configured = billing_selectors.stripe_configured()
    overview = billing_selectors.billing_overview(org=org)
    subscribed = overview["subscription_status"] in ALIVE_STATUSES
    report = plan_selectors.usage_report(org=org)
    context.update(
        {
            "org": org,
            "configured": configured,
            "overview": overview,
            "subscribed": subscribed,
            "usage": _usage_rows(report),
            "period": report,
            "cards": _plan_cards(org.plan_id, can_upgrade=configured and not subscribed),
            "org_query": urlencode({"organization": str(org.pk)}),
        }
    )
    return TemplateResponse(request, "admin/console/billing.html", context)


def _back(org: Organization) -> HttpResponseRedirect:
    return HttpResponseRedirect(
        reverse("admin:billing") + "?" + urlencode({"organization": str(org.pk)})
    )


def _posted_for_organization(
    view: Callable[[Any, HttpRequest, Organization], HttpResponse],
) -> Callable[[Any, HttpRequest], HttpResponse]:
    """A billing button's view: POST only (405 otherwise), for the organization that
    `organization_for` finds (404 without one)."""

    @functools.wraps(view)
    def posted(site: Any, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        org, _ = organization_for(request)
        if org is None:
            raise Http404
        return view(site, request, org)

    return posted


@_posted_for_organization
def upgrade_view(site: Any, request: HttpRequest, org: Organization) -> HttpResponse:
    """Start a Checkout for the chosen plan and send the browser to Stripe."""
    plan = request.POST.get("plan", "")
    done = request.build_absolute_uri(reverse("admin:billing_done"))
    query = urlencode({"organization": str(org.pk)})
    try:
        session = billing_services.checkout_start(
            org=org,
            plan_code=plan,
            # Stripe replaces {CHECKOUT_SESSION_ID} itself (it must stay unescaped).
            success_url=f"{done}?{query}&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=request.build_absolute_uri(reverse("admin:billing")) + f"?{query}",
        )
    except refusals as exc:
        site_message(request, f"No checkout was started: {refusal_text(exc)}", messages.ERROR)
        return _back(org)
    pending = dict(request.session.get(PENDING_KEY) or {})
    pending[str(org.pk)] = {"plan": plan, "session": session["session_id"]}
    request.session[PENDING_KEY] = pending
    return HttpResponseRedirect(session["checkout_url"])


@_posted_for_organization
def portal_view(site: Any, request: HttpRequest, org: Organization) -> HttpResponse:
    """Send the browser to Stripe's billing portal (payment method, invoices, cancel)."""
    back = (
        request.build_absolute_uri(reverse("admin:billing"))
        + "?"
        + urlencode({"organization": str(org.pk)})
    )
    try:
        session = billing_services.portal_open(org=org, return_url=back)
    except refusals as exc:
        site_message(
            request, f"The billing portal could not be opened: {refusal_text(exc)}", messages.ERROR
        )
        return _back(org)
    return HttpResponseRedirect(session["portal_url"])


def done_view(site: Any, request: HttpRequest) -> HttpResponse:
    """Where Checkout returns: the new plan once Stripe's webhook has changed it, a pending
    state until then (the page asks again by itself, `?part=status`)."""
    org, _ = organization_for(request)
    if org is None:
        raise Http404
    pending = (request.session.get(PENDING_KEY) or {}).get(str(org.pk)) or {}
    wanted = pending.get("plan")
    overview = billing_selectors.billing_overview(org=org)
    landed = bool(wanted) and org.plan_id == wanted
    if landed:
        remaining = dict(request.session.get(PENDING_KEY) or {})
        remaining.pop(str(org.pk), None)
        request.session[PENDING_KEY] = remaining
    context = {
        **site.each_context(request),
        "title": "Billing: waiting for Stripe" if wanted and not landed else "Billing",
        "org": org,
        "wanted": wanted,
        "landed": landed,
        # done: the plan changed; pending: Stripe has not told us yet; idle: nothing awaited
        "state": "done" if landed else ("pending" if wanted else "idle"),
        "overview": overview,
        "status_url": reverse("admin:billing_done")
        + "?"
        + urlencode({"organization": str(org.pk), "part": "status"}),
        "billing_url": reverse("admin:billing") + "?" + urlencode({"organization": str(org.pk)}),
    }
    template = (
        "admin/console/billing_status.html"
        if request.GET.get("part") == "status"
        else "admin/console/billing_done.html"
    )
    return TemplateResponse(request, template, context)


def site_message(request: HttpRequest, text: str, level: int) -> None:
    messages.add_message(request, level, text, fail_silently=True)
