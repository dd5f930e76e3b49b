"""Writes for status pages, sections, incident updates, postmortems, subscribers and badges.

Every change goes through here. Writes that change what a page shows clear
its cached rendering, so a posted update is visible at once instead of after the cache TTL.
See docs/decisions/0008-services-own-state-changes.md.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.actors import api_key_ref
from apps.core.errors import ServiceError
from apps.incidents.models import Incident
from apps.monitors.models import Monitor
from apps.plans.models import Feature
from apps.plans.services import require_feature
from apps.statuspages import cache as page_cache
from apps.statuspages.emails import confirmation_send, update_fan_out  # one services API
from apps.statuspages.models import (
    Badge,
    IncidentUpdate,
    Postmortem,
    StatusPage,
    StatusPageMonitor,
    StatusPageSection,
    new_access_token,
)
from apps.statuspages.subscriptions import (  # for the app
    enqueue,
    subscriber_confirm,
    subscriber_unsubscribe,
    subscription_request,
)
from apps.tenants.models import ApiKey, Organization

_PAGE_FIELDS = ("name", "slug", "description", "published", "private", "history_days")


# --- Pages ---------------------------------------------------------------------------------


def _apply_secret(page: StatusPage, data: dict[str, Any]) -> None:
    if "password" in data:
        password = data["password"] or ""
        page.password_hash = make_password(password) if password else ""
    if data.get("rotate_token"):
        page.access_token = new_access_token()


def _check_slug(slug: str, exclude: object = None) -> None:
    taken = StatusPage.objects.filter(slug=slug)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ServiceError("This address is taken.", code="slug_taken", field="slug")


@transaction.atomic
def status_page_create(*, org: Organization, data: dict[str, Any]) -> StatusPage:
    """Create a page. Needs the `status_pages` feature (402 otherwise), whether or not it is
    published: an unpublished draft is still the feature."""
    require_feature(org=org, feature=Feature.STATUS_PAGES)
    _check_slug(data["slug"])
    page = StatusPage(organization=org, **{k: data[k] for k in _PAGE_FIELDS if k in data})
    _apply_secret(page, data)
    try:
        with transaction.atomic():
            page.save()
    except IntegrityError as exc:  # a concurrent create took the slug between check and insert
        raise ServiceError("This address is taken.", code="slug_taken", field="slug") from exc
    return page


@transaction.atomic
def status_page_update(*, page: StatusPage, data: dict[str, Any]) -> StatusPage:
    """Change a page. Publishing (published becoming true) needs the feature again, so a
    downgraded organization cannot re-publish a page it unpublished."""
    if data.get("published") and not page.published:
        require_feature(org=page.organization, feature=Feature.STATUS_PAGES)
    if "slug" in data and data["slug"] != page.slug:
        _check_slug(data["slug"], exclude=page.pk)
    old_slug = page.slug
    for key in _PAGE_FIELDS:
        if key in data:
            setattr(page, key, data[key])
    _apply_secret(page, data)
    page.save()
    page_cache.forget_slugs([old_slug, page.slug])
    return page


@transaction.atomic
def status_page_delete(*, page: StatusPage) -> None:
    slug = page.slug
    page.delete()
    page_cache.forget_slugs([slug])


# --- Sections ------------------------------------------------------------------------------


def _monitors_of(org: Organization, ids: list[Any]) -> list[Monitor]:
    found = {m.pk: m for m in Monitor.objects.for_org(org).filter(pk__in=ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ServiceError(
            f"Unknown monitor {missing[0]}.", code="unknown_monitor", field="monitors"
        )
    if len(set(ids)) != len(ids):
        raise ServiceError("A monitor is listed twice.", code="duplicate", field="monitors")
    return [found[i] for i in ids]


def _set_items(section: StatusPageSection, entries: list[dict[str, Any]]) -> None:
    monitors = _monitors_of(section.organization, [e["monitor"] for e in entries])
    StatusPageMonitor.objects.filter(section=section).delete()
    StatusPageMonitor.objects.bulk_create(
        StatusPageMonitor(
            organization_id=section.organization_id,
            section=section,
            monitor=monitor,
            display_name=entry.get("display_name", ""),
            position=index,
        )
        for index, (entry, monitor) in enumerate(zip(entries, monitors, strict=True))
    )


@transaction.atomic
def section_create(*, org: Organization, data: dict[str, Any]) -> StatusPageSection:
    """A section of monitors, in the order given. The page and monitors must be the org's."""
    page = StatusPage.objects.for_org(org).filter(pk=data["page"]).first()
    if page is None:
        raise ServiceError("Unknown status page.", code="unknown_page", field="page")
    section = StatusPageSection.objects.create(
        organization=org, page=page, name=data["name"], position=data.get("position", 0)
    )
    _set_items(section, data.get("monitors", []))
    page_cache.forget_slugs([page.slug])
    return section


@transaction.atomic
def section_update(*, section: StatusPageSection, data: dict[str, Any]) -> StatusPageSection:
    for key in ("name", "position"):
        if key in data:
            setattr(section, key, data[key])
    section.save()
    if "monitors" in data:
        _set_items(section, data["monitors"])
    page_cache.forget_slugs([section.page.slug])
    return section


@transaction.atomic
def section_delete(*, section: StatusPageSection) -> None:
    slug = section.page.slug
    section.delete()
    page_cache.forget_slugs([slug])


# --- Incident communication ----------------------------------------------------------------


@transaction.atomic
def incident_update_post(
    *,
    incident: Incident,
    status: str,
    message: str,
    user: Any = None,
    notify: bool = True,
    api_key: ApiKey | None = None,
) -> IncidentUpdate:
    """Publish an update on an incident (by a user or an API key). Shown on every page
    listing its monitor at once; emailed to those pages' confirmed subscribers after commit
    (when `notify`)."""
    author = user if getattr(user, "pk", None) else None
    update = IncidentUpdate.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        status=status,
        message=message,
        author=author,
        author_key=api_key_ref(api_key) if author is None else None,
        posted_at=timezone.now(),
        notify=notify,
    )
    page_cache.forget_for_incident(incident)
    if notify:
        enqueue("send_incident_update", str(update.pk))
    return update


@transaction.atomic
def postmortem_set(
    *,
    incident: Incident,
    body: str,
    published: bool = True,
    user: Any = None,
    api_key: ApiKey | None = None,
) -> Postmortem:
    """Write (or rewrite) the incident's postmortem; one per incident. Its author is whoever
    wrote it last (a user or an API key)."""
    author = user if getattr(user, "pk", None) else None
    postmortem, _ = Postmortem.objects.update_or_create(
        incident=incident,
        defaults={
            "organization_id": incident.organization_id,
            "body": body,
            "published": published,
            "author": author,
            "author_key": api_key_ref(api_key) if author is None else None,
        },
    )
    page_cache.forget_for_incident(incident)
    return postmortem


# --- Badges --------------------------------------------------------------------------------


@transaction.atomic
def badge_create(*, org: Organization, monitor_id: Any) -> Badge:
    """The monitor's badge (created once; asking again returns the same one)."""
    monitor = Monitor.objects.for_org(org).filter(pk=monitor_id).first()
    if monitor is None:
        raise ServiceError("Unknown monitor.", code="unknown_monitor", field="monitor")
    badge, _ = Badge.objects.get_or_create(monitor=monitor, defaults={"organization": org})
    return badge


@transaction.atomic
def badge_delete(*, badge: Badge) -> None:
    """Revoke: the old URLs answer the grey "unknown" badge from now on."""
    badge.delete()


__all__ = [
    "badge_create",
    "badge_delete",
    "confirmation_send",
    "incident_update_post",
    "postmortem_set",
    "section_create",
    "section_delete",
    "section_update",
    "status_page_create",
    "status_page_delete",
    "status_page_update",
    "subscriber_confirm",
    "subscriber_unsubscribe",
    "subscription_request",
    "update_fan_out",
]
