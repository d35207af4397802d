"""The request side: who the user is and which request this is, in force
(``auditsql.integrations.context``) while the view runs, with the
database hook installed on every connection."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.db import connections

from auditsql.integrations.context import AuditContext, client_ip, reset, set_current
from auditsql.integrations.django.conf import Config, config, meta_key
from auditsql.integrations.django.wrapper import ContextWrapper


def actor_of(user: Any, settings: Config) -> dict[str, Any]:
    """The actor values of *user*; none for an anonymous one."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {"actor_id": None, "email": None, "role": None}
    described = settings.actor(user) or {}
    return {"actor_id": described.get("actor_id"), "email": described.get("email"),
            "role": described.get("role")}


def request_context(request: Any, settings: Config) -> AuditContext:
    """The request's address, user agent and id, with no actor."""
    meta = request.META
    forwarded = (meta.get(meta_key(settings.trusted_proxy_header))
                 if settings.trusted_proxy_header else None)
    request_id = (meta.get(meta_key(settings.request_id_header))
                  if settings.request_id_header else None)
    return AuditContext.of(
        ip_address=client_ip(meta.get("REMOTE_ADDR"), forwarded, settings.trusted_proxies),
        user_agent=meta.get("HTTP_USER_AGENT"),
        request_id=request_id or str(uuid.uuid4()),
    )


class AuditContextMiddleware:
    """Put the request's context in force and the database hook on every
    connection while the rest of the stack (views, ``ATOMIC_REQUESTS``)
    handles the request. Place it after ``AuthenticationMiddleware``."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.settings = config()

    def __call__(self, request: Any) -> Any:
        settings = self.settings
        base = request_context(request, settings)
        token = set_current(base)
        try:
            with ExitStack() as stack:
                wrapper = ContextWrapper(settings.schema)
                aliases = settings.databases or tuple(connections)
                for alias in aliases:
                    stack.enter_context(connections[alias].execute_wrapper(wrapper))
                # The user is read here, under the hook: loading it from
                # the session is a read, and carries the request already.
                set_current(base.with_values(**actor_of(getattr(request, "user", None),
                                                         settings)))
                return self.get_response(request)
        finally:
            reset(token)
