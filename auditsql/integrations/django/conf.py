"""The integration's settings, read from ``settings.AUDITSQL`` (a dict):

``SCHEMA``
    The schema auditsql is installed in (``"audit"``).
``ACTOR``
    A callable, or its dotted path, ``actor(user) -> dict | None`` giving
    ``actor_id``, ``email`` and ``role`` for an authenticated user
    (default: the primary key, the ``email`` attribute, no role).
``TRUSTED_PROXY_HEADER``
    The header a trusted proxy puts the client address in, such as
    ``"X-Forwarded-For"`` (default: none, the peer's address is used).
``TRUSTED_PROXIES``
    How many trusted proxies append to that header (1).
``REQUEST_ID_HEADER``
    The header that carries the request id (``"X-Request-ID"``); without
    it a UUID is generated.
``DATABASES``
    The aliases whose transactions carry the context (default: all).
``AUTH_EVENTS``
    Whether login, logout, failed login and password change are recorded
    (``True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from auditsql.context import DEFAULT_SCHEMA
from auditsql.errors import InvalidValue

Actor = Callable[[Any], Mapping[str, Any] | None]
KNOWN = {"SCHEMA", "ACTOR", "TRUSTED_PROXY_HEADER", "TRUSTED_PROXIES", "REQUEST_ID_HEADER",
         "DATABASES", "AUTH_EVENTS"}


def default_actor(user: Any) -> Mapping[str, Any] | None:
    """The user's primary key and email; no role."""
    return {"actor_id": user.pk, "email": getattr(user, "email", None) or None}


@dataclass(frozen=True)
class Config:
    schema: str
    actor: Actor
    trusted_proxy_header: str | None
    trusted_proxies: int
    request_id_header: str | None
    databases: tuple[str, ...] | None
    auth_events: bool


def meta_key(header: str) -> str:
    """The ``request.META`` key of an HTTP header (``X-Request-ID`` ->
    ``HTTP_X_REQUEST_ID``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def config() -> Config:
    """The settings in force; an unknown key or a bad value is refused."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    raw: dict[str, Any] = dict(getattr(settings, "AUDITSQL", {}) or {})
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise InvalidValue(f"settings.AUDITSQL: unknown key {unknown[0]!r}; "
                           f"known: {', '.join(sorted(KNOWN))}")
    actor = raw.get("ACTOR", default_actor)
    if isinstance(actor, str):
        actor = import_string(actor)
    if not callable(actor):
        raise InvalidValue("settings.AUDITSQL['ACTOR'] must be a callable or its dotted path")
    proxies = raw.get("TRUSTED_PROXIES", 1)
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 1:
        raise InvalidValue("settings.AUDITSQL['TRUSTED_PROXIES'] must be a whole number from 1")
    databases = raw.get("DATABASES")
    return Config(
        schema=raw.get("SCHEMA", DEFAULT_SCHEMA),
        actor=actor,
        trusted_proxy_header=raw.get("TRUSTED_PROXY_HEADER"),
        trusted_proxies=proxies,
        request_id_header=raw.get("REQUEST_ID_HEADER", "X-Request-ID"),
        databases=None if databases is None else tuple(databases),
        auth_events=bool(raw.get("AUTH_EVENTS", True)),
    )
