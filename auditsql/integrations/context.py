"""The context holder: who acts and for which request, in a ContextVar.

A ContextVar follows the code that runs for a request: into the coroutines
and tasks it awaits or starts, and into threads started through
``contextvars.copy_context()`` (``asyncio.to_thread``, Starlette's thread
pool). Drivers read it when a transaction starts; nothing is passed around.

``set_context_sql`` is the one place that turns it into the statement that
sets the transaction-local settings; ``Applied`` is the one place that
decides, statement by statement, whether a connection's transaction
already carries the context in force.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any, Final

from psycopg import sql

from auditsql.context import DEFAULT_SCHEMA, call_sql


@dataclass(frozen=True)
class AuditContext:
    """The actor and request writes are attributed to; every value is text
    or None, as ``audit.set_context`` takes it."""

    actor_id: str | None = None
    email: str | None = None
    role: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, **values: Any) -> AuditContext:
        """A context from values of any scalar type, stored as ``str(value)``;
        an empty string is None, as the database stores it."""
        return cls(**{k: _text(v) for k, v in values.items()})

    def with_values(self, **values: Any) -> AuditContext:
        """This context with some values replaced."""
        return replace(self, **{k: _text(v) for k, v in values.items()})

    def without_actor(self) -> AuditContext:
        """This request, with no actor (after a logout)."""
        return replace(self, actor_id=None, email=None, role=None)

    def values(self) -> tuple[str | None, ...]:
        """The values in the order of ``audit.set_context``'s arguments."""
        return tuple(getattr(self, f.name) for f in fields(self))


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text or None


_current: ContextVar[AuditContext | None] = ContextVar("auditsql_context", default=None)


def current() -> AuditContext | None:
    """The context in force here, or None."""
    return _current.get()


def set_current(context: AuditContext | None) -> Token[AuditContext | None]:
    """Put *context* in force until ``reset(token)``."""
    return _current.set(context)


def reset(token: Token[AuditContext | None]) -> None:
    """Restore the context in force before ``set_current`` returned *token*."""
    _current.reset(token)


@contextmanager
def bind(context: AuditContext | None = None, **values: Any) -> Iterator[AuditContext]:
    """Put a context in force for a block: *context*, or the one in force
    with *values* replaced (``bind(actor_id=7)`` inside a request keeps its
    request id)."""
    if context is None:
        context = (current() or AuditContext()).with_values(**values)
    elif values:
        context = context.with_values(**values)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def update(**values: Any) -> AuditContext:
    """Replace values of the context in force, for the rest of the current
    task or thread (a login names the actor halfway through a request)."""
    context = (current() or AuditContext()).with_values(**values)
    _current.set(context)
    return context


def set_context_sql(context: AuditContext | None, schema: str = DEFAULT_SCHEMA,
                    function: str = "set_context") -> str:
    """``SELECT schema.set_context(...)`` with the values as literals
    (*function* ``push_context`` saves the context in force first).

    Literals, not parameters: so the statement can share one simple-protocol
    message with ``BEGIN`` (``begin_sql``), which no driver allows for a
    statement with parameters. psycopg quotes them.
    """
    return _render(context or AuditContext(), schema, function)


# Quoting the six values costs more than a round trip's worth of client
# time; a request's transactions share their context, so they share this.
@lru_cache(maxsize=256)
def _render(context: AuditContext, schema: str, function: str) -> str:
    values = context.values()
    return call_sql(schema, function,
                    [sql.SQL("{}::text").format(sql.Literal(v)) for v in values]).as_string(None)


def begin_sql(context: AuditContext | None, schema: str = DEFAULT_SCHEMA,
              begin: str = "BEGIN") -> str:
    """``BEGIN; SELECT schema.set_context(...)``: one round trip that opens
    a transaction already carrying *context*."""
    return f"{begin}; {set_context_sql(context, schema)}"


def pop_context_sql(schema: str = DEFAULT_SCHEMA) -> str:
    """``SELECT schema.pop_context()``."""
    return call_sql(schema, "pop_context").as_string(None)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


#: What a transaction carries when it was not seen to start.
UNKNOWN: Final = _Unknown()


class Applied:
    """What the open transaction of one connection carries, as far as the
    integration knows: ``UNKNOWN`` until it is seen to start or is set."""

    __slots__ = ("context",)

    def __init__(self) -> None:
        self.context: AuditContext | None | _Unknown = UNKNOWN

    def forget(self) -> None:
        """The transaction ended, or a rollback to a savepoint may have
        restored an earlier context."""
        self.context = UNKNOWN

    def needs(self, context: AuditContext | None) -> bool:
        """Whether *context* must be sent before the next statement. A
        transaction that was not seen to start may carry anything, so it
        is sent, even if None (to clear)."""
        return self.context is UNKNOWN or self.context != context


def client_ip(peer: str | None, forwarded: str | None, trusted_proxies: int = 1) -> str | None:
    """The client's address: *peer* (the connection's), or, when a trusted
    proxy header was read (*forwarded*, a comma-separated list each proxy
    appends to), the entry *trusted_proxies* from its right end; entries a
    client wrote itself, to the left, are never taken."""
    if not forwarded:
        return peer
    entries = [e.strip() for e in forwarded.split(",") if e.strip()]
    if not entries:
        return peer
    return entries[max(len(entries) - trusted_proxies, 0)]
