"""FastAPI and Starlette: an ASGI middleware that puts each request's
context in force (``auditsql.integrations.context``) and a FastAPI
dependency that names the actor once the application knows the user.

The middleware is plain ASGI: it needs neither Starlette nor FastAPI. The
database side is the driver's integration: ``sqlalchemy.instrument`` for
SQLAlchemy (async or not), ``asyncpg.transaction``, ``psycopg.transaction``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from auditsql.integrations.context import AuditContext, client_ip, reset, set_current, update

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]],
                   Awaitable[None]]


class AuditContextMiddleware:
    """Put the request's context (client address, user agent, request id)
    in force while the application handles it.

    *trusted_proxy_header* (such as ``"x-forwarded-for"``) is read only when
    given: the address *trusted_proxies* entries from its right end is the
    client's (each trusted proxy appends the address it saw). The request id
    is *request_id_header*'s value, or a new UUID.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxy_header: str | None = None,
                 trusted_proxies: int = 1, request_id_header: str | None = "x-request-id"
                 ) -> None:
        self.app = app
        self.trusted_proxy_header = (trusted_proxy_header.lower().encode("latin-1")
                                     if trusted_proxy_header else None)
        self.trusted_proxies = trusted_proxies
        self.request_id_header = (request_id_header.lower().encode("latin-1")
                                  if request_id_header else None)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = set_current(self.context(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            reset(token)

    def context(self, scope: Scope) -> AuditContext:
        """The context of the request *scope* describes, with no actor yet."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.lower(), value)
        peer = scope.get("client")
        forwarded = headers.get(self.trusted_proxy_header) if self.trusted_proxy_header else None
        request_id = headers.get(self.request_id_header) if self.request_id_header else None
        agent = headers.get(b"user-agent")
        return AuditContext.of(
            ip_address=client_ip(peer[0] if peer else None,
                                 forwarded.decode("latin-1") if forwarded else None,
                                 self.trusted_proxies),
            user_agent=agent.decode("latin-1") if agent else None,
            request_id=request_id.decode("latin-1") if request_id else str(uuid.uuid4()),
        )


Describe = Callable[[Any], Mapping[str, Any] | None]


def default_describe(user: Any) -> Mapping[str, Any] | None:
    """``id``, ``email`` and ``role`` attributes (or keys) of *user*; None
    for no user."""
    if user is None:
        return None
    if isinstance(user, Mapping):
        return {"actor_id": user.get("id"), "email": user.get("email"), "role": user.get("role")}
    return {"actor_id": getattr(user, "id", None), "email": getattr(user, "email", None),
            "role": getattr(user, "role", None)}


def actor_dependency(user_dependency: Callable[..., Any],
                     describe: Describe = default_describe) -> Callable[..., Awaitable[Any]]:
    """A FastAPI dependency that resolves *user_dependency* and names its
    user as the actor for the rest of the request; returns the user.

    ``app = FastAPI(dependencies=[Depends(actor_dependency(current_user))])``
    or per route. It is a coroutine, so FastAPI runs it in the request's
    own task, where the endpoint (and the threads it starts) see the actor.
    """
    from fastapi import Depends

    async def audit_actor(user: Any = Depends(user_dependency)) -> Any:
        described = describe(user)
        if described is not None:
            update(**dict(described))
        return user

    return audit_actor
