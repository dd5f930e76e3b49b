"""The short server-side cache of rendered public pages (HTML, status.json, feed.rss).

Keyed by slug: a visitor's request is one cache read when warm. Writes that change what a
page shows clear its keys (services call `forget_*`); monitor status changes do not (they are
frequent and come from the check engine), so they show within STATUS_PAGE_CACHE_SECONDS.
Private pages are never cached here: what is in the cache is served without a password check.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

FORMATS = ("html", "json", "rss")


def key(slug: str, fmt: str) -> str:
    return f"statuspage:{fmt}:{slug}"


def get(slug: str, fmt: str):
    if not settings.STATUS_PAGE_CACHE_SECONDS:
        return None
    return cache.get(key(slug, fmt))


def put(slug: str, fmt: str, value) -> None:
    if settings.STATUS_PAGE_CACHE_SECONDS:
        cache.set(key(slug, fmt), value, settings.STATUS_PAGE_CACHE_SECONDS)


def forget_slugs(slugs) -> None:
    cache.delete_many([key(slug, fmt) for slug in set(slugs) for fmt in FORMATS])


def forget_for_incident(incident) -> None:
    """Clear the pages that show this incident: those listing its monitor, or every page of
    the organization for an incident without a monitor."""
    from apps.statuspages.models import StatusPage

    pages = StatusPage.objects.filter(organization_id=incident.organization_id)
    if incident.monitor_id is not None:
        pages = pages.filter(sections__items__monitor_id=incident.monitor_id)
    forget_slugs(pages.values_list("slug", flat=True).distinct())
