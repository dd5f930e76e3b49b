"""Who is acting, for the audit log, without threading `actor=` through every service.

`AuditContextMiddleware` remembers the current HTTP request in a context variable; the actor
is resolved when an entry is written: the API's tenancy gate leaves `request.tenancy` (a user
or an API key) on it, the admin leaves `request.user` (an operator if superuser). Outside a
request (Celery tasks, beat sweeps, management commands) the actor is the system, unless code
says otherwise with `acting_as(...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from apps.audit.models import ActorKind
from apps.core.actors import api_key_label, user_label

_request_var: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_override_var: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


@dataclass(frozen=True)
class Actor:
    kind: str
    label: str
    user: Any = None
    api_key: Any = None


SYSTEM = Actor(kind=ActorKind.SYSTEM, label="system")


def api_key_actor(api_key: Any) -> Actor:
    """An API key, labelled as everywhere else: `API key "deploy bot" (hk_ab12cd34)`."""
    label = api_key_label(api_key.name, api_key.prefix)
    return Actor(kind=ActorKind.API_KEY, label=label[:200], api_key=api_key)


def system_actor(label: str) -> Actor:
    """The system, named more precisely ("manage.py apply_monitors", "delivery")."""
    return Actor(kind=ActorKind.SYSTEM, label=label[:200])


def _user_actor(user: Any, *, operator: bool) -> Actor:
    label = user_label(user)
    kind = ActorKind.OPERATOR if operator else ActorKind.USER
    return Actor(kind=kind, label=label[:200], user=user)


def current_actor() -> Actor:
    override = _override_var.get()
    if override is not None:
        return override
    request = _request_var.get()
    if request is None:
        return SYSTEM
    tenancy = getattr(request, "tenancy", None)
    if tenancy is not None:
        if tenancy.api_key is not None:
            return api_key_actor(tenancy.api_key)
        if tenancy.user is not None:
            return _user_actor(tenancy.user, operator=False)
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        # Signed in to the console: superusers are platform operators, others tenant members.
        return _user_actor(user, operator=bool(user.is_superuser))
    return SYSTEM


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Attribute the entries written inside the block to `actor` (e.g. a user in a task)."""
    token = _override_var.set(actor)
    try:
        yield
    finally:
        _override_var.reset(token)


def user_actor(user: Any) -> Actor:
    return _user_actor(user, operator=bool(getattr(user, "is_superuser", False)))


class AuditContextMiddleware:
    """Remembers the request so audit entries know who made them (see module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request_var.set(request)
        try:
            return self.get_response(request)
        finally:
            _request_var.reset(token)
