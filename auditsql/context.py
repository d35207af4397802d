"""Actor and request context for application code.

Each helper sets auditsql's transaction-local settings through the SQL
functions (``set_context``, ``push_context``, ``pop_context``, ``set_actor``,
``set_request``), so every event the transaction writes carries them;
nothing survives the transaction. With a psycopg connection in autocommit
mode a context would end with the very statement that set it, so the
context manager opens a transaction of its own; inside an open transaction
it uses a savepoint and restores the caller's context when it ends.

Values are sent as text: an id may be of any scalar type (an int primary
key, a UUID, a Decimal), and is stored as ``str(value)``. A value longer
than 1024 characters is cut by the database, never refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeAlias
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

DEFAULT_SCHEMA = "audit"

#: An id as the application holds it: a primary key, a UUID, a request id.
#: Stored as ``str(value)``; any other scalar whose ``str()`` is its text
#: works too.
Id: TypeAlias = str | int | Decimal | UUID
#: A client address as the application holds it, stored as ``str(value)``.
Address: TypeAlias = str | IPv4Address | IPv6Address

#: The settings of the context, in the order of ``set_context``'s arguments.
CONTEXT_SETTINGS = ("auditsql.actor_id", "auditsql.actor_email", "auditsql.actor_role",
                    "auditsql.ip_address", "auditsql.user_agent", "auditsql.request_id")


def _text(value: object) -> str | None:
    """*value* as the text the database stores; None stays None."""
    return None if value is None else str(value)


def call_sql(schema: str, function: str, args: Sequence[sql.Composable] = ()) -> sql.Composed:
    """``SELECT schema.function(args)``."""
    return sql.SQL("SELECT {}.{}({})").format(
        sql.Identifier(schema), sql.Identifier(function), sql.SQL(", ").join(args))


def _texts(values: Sequence[object]) -> tuple[list[sql.Composable], list[str | None]]:
    """One ``%s::text`` placeholder per value, and the values as text."""
    return [sql.SQL("%s::text")] * len(values), [_text(v) for v in values]


def _with(schema: str, function: str,
          values: Sequence[object]) -> tuple[sql.Composed, list[str | None]]:
    """A call of *function* with *values* as text parameters."""
    args, params = _texts(values)
    return call_sql(schema, function, args), params


def set_actor(
    cur: psycopg.Cursor[Any],
    actor_id: Id | None,
    email: str | None = None,
    role: str | None = None,
    *,
    schema: str = DEFAULT_SCHEMA,
) -> None:
    """Name the actor of the current transaction (``audit.set_actor``)."""
    cur.execute(*_with(schema, "set_actor", (actor_id, email, role)))


def set_request(
    cur: psycopg.Cursor[Any],
    ip_address: Address | None,
    user_agent: str | None = None,
    request_id: Id | None = None,
    *,
    schema: str = DEFAULT_SCHEMA,
) -> None:
    """Describe the request behind the current transaction (``audit.set_request``)."""
    cur.execute(*_with(schema, "set_request", (ip_address, user_agent, request_id)))


def set_context(
    cur: psycopg.Cursor[Any],
    *,
    actor_id: Id | None = None,
    email: str | None = None,
    role: str | None = None,
    ip_address: Address | None = None,
    user_agent: str | None = None,
    request_id: Id | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> None:
    """Set the whole context of the current transaction in one statement
    (``audit.set_context``); a value not given is cleared."""
    cur.execute(*_with(schema, "set_context",
                       (actor_id, email, role, ip_address, user_agent, request_id)))


def push_context(
    cur: psycopg.Cursor[Any],
    *,
    actor_id: Id | None = None,
    email: str | None = None,
    role: str | None = None,
    ip_address: Address | None = None,
    user_agent: str | None = None,
    request_id: Id | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> None:
    """Save the context in force and set this one (``audit.push_context``);
    ``pop_context`` restores the saved one."""
    cur.execute(*_with(schema, "push_context",
                       (actor_id, email, role, ip_address, user_agent, request_id)))


def pop_context(cur: psycopg.Cursor[Any], *, schema: str = DEFAULT_SCHEMA) -> None:
    """Restore the context the last ``push_context`` saved (``audit.pop_context``)."""
    cur.execute(call_sql(schema, "pop_context"))


def _in_transaction(conn: psycopg.Connection[Any]) -> bool:
    """Whether a transaction is open, so that ``conn.transaction()`` makes a savepoint."""
    return conn.info.transaction_status != TransactionStatus.IDLE


@contextmanager
def audit_context(
    conn: psycopg.Connection[Any],
    *,
    actor_id: Id | None = None,
    email: str | None = None,
    role: str | None = None,
    ip_address: Address | None = None,
    user_agent: str | None = None,
    request_id: Id | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> Iterator[psycopg.Connection[Any]]:
    """Run a block in a transaction whose writes carry this actor and request.

    Commits when the block ends normally and rolls back on an exception, like
    ``conn.transaction()``, and sets the context in one statement
    (``set_context``). Inside an open transaction it uses a savepoint: the
    context in force is saved (``push_context``) and restored when the block
    ends normally (``pop_context``, before the savepoint is released); on an
    exception the savepoint rolls back the block's writes and its context
    together. Either way the writes after the block carry the caller's
    context again.
    """
    nested = _in_transaction(conn)
    values = (actor_id, email, role, ip_address, user_agent, request_id)
    with conn.transaction():
        with conn.cursor() as cur:
            cur.execute(*_with(schema, "push_context" if nested else "set_context", values))
        yield conn
        if nested:
            with conn.cursor() as cur:
                pop_context(cur, schema=schema)


def log_event(
    conn: psycopg.Connection[Any],
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: Id | None = None,
    details: dict[str, Any] | None = None,
    actor_id: Id | None = None,
    email: str | None = None,
    role: str | None = None,
    ip_address: Address | None = None,
    user_agent: str | None = None,
    request_id: Id | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> int:
    """Record an application event, such as ``"login"`` or
    ``"login_failed"``, and return its id (``audit.log_event``).

    The event carries the context of the transaction, except that an actor
    (``actor_id``, ``email``, ``role``: any of them given replaces all
    three) or a request (``ip_address``, ``user_agent``, ``request_id``)
    given here replaces that part for this event; a part not given is the
    transaction's. Runs in a transaction of its own, like ``audit_context``;
    inside an open transaction it uses a savepoint, and the context given
    here ends with the call: the rest of the transaction keeps its own.
    The connection's role needs the writer role (``auditsql_writer``).
    """
    actor = (actor_id, email, role)
    request = (ip_address, user_agent, request_id)
    given = [any(v is not None for v in part) for part in (actor, request)]
    nested = _in_transaction(conn)
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        if any(given):
            # One statement: a part not given is the transaction's own,
            # read in the same call.
            args: list[sql.Composable] = []
            params: list[str | None] = []
            for part, is_given, names in ((actor, given[0], CONTEXT_SETTINGS[:3]),
                                          (request, given[1], CONTEXT_SETTINGS[3:])):
                if is_given:
                    part_args, part_params = _texts(part)
                    args += part_args
                    params += part_params
                else:
                    args += [sql.SQL("pg_catalog.current_setting({}, true)").format(
                        sql.Literal(name)) for name in names]
            cur.execute(call_sql(schema, "push_context" if nested else "set_context", args),
                        params)
        args, params = _texts((action, entity_type, entity_id))
        cur.execute(
            call_sql(schema, "log_event", [*args, sql.SQL("%s::jsonb")]),
            [*params, None if details is None else Jsonb(details)],
        )
        row = cur.fetchone()
        if any(given) and nested:
            pop_context(cur, schema=schema)
    assert row is not None
    return int(row[0])
