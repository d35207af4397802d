"""Actor and request context for application code.

Each helper sets auditsql's transaction-local settings through the SQL
helpers ``set_actor`` / ``set_request``, so every event the transaction
writes carries them; nothing survives the transaction. With a psycopg
connection in autocommit mode a context would end with the very statement
that set it, so the context manager opens a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

DEFAULT_SCHEMA = "audit"


def set_actor(
    cur: psycopg.Cursor,
    actor_id: str | None,
    email: str | None = None,
    role: str | None = None,
    *,
    schema: str = DEFAULT_SCHEMA,
) -> None:
    """Name the actor of the current transaction."""
    cur.execute(
        sql.SQL("SELECT {}.set_actor(%s, %s, %s)").format(sql.Identifier(schema)),
        (actor_id, email, role),
    )


def set_request(
    cur: psycopg.Cursor,
    ip_address: str | None,
    user_agent: str | None = None,
    request_id: str | None = None,
    *,
    schema: str = DEFAULT_SCHEMA,
) -> None:
    """Describe the request behind the current transaction."""
    cur.execute(
        sql.SQL("SELECT {}.set_request(%s, %s, %s)").format(sql.Identifier(schema)),
        (ip_address, user_agent, request_id),
    )


@contextmanager
def audit_context(
    conn: psycopg.Connection,
    *,
    actor_id: str | None = None,
    email: str | None = None,
    role: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> Iterator[psycopg.Connection]:
    """Run a block in a transaction whose writes carry this actor and request.

    Commits when the block ends normally and rolls back on an exception, like
    ``conn.transaction()``. Inside an open transaction it uses a savepoint and
    the context stays set until that outer transaction ends.
    """
    with conn.transaction():
        with conn.cursor() as cur:
            set_actor(cur, actor_id, email, role, schema=schema)
            set_request(cur, ip_address, user_agent, request_id, schema=schema)
        yield conn


def log_event(
    conn: psycopg.Connection,
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    details: dict[str, Any] | None = None,
    actor_id: str | None = None,
    email: str | None = None,
    role: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> int:
    """Record an application event, such as ``"login"`` or
    ``"login_failed"``, and return its id (``audit.log_event``).

    Runs in a transaction of its own, like ``audit_context``; inside an open
    transaction it uses a savepoint, and an actor or request given here stays
    set until that outer transaction ends (one not given is left as it was).
    The connection's role needs the writer role (``auditsql_writer``).
    """
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        if any(v is not None for v in (actor_id, email, role)):
            set_actor(cur, actor_id, email, role, schema=schema)
        if any(v is not None for v in (ip_address, user_agent, request_id)):
            set_request(cur, ip_address, user_agent, request_id, schema=schema)
        cur.execute(
            sql.SQL("SELECT {}.log_event(%s, %s, %s, %s)").format(sql.Identifier(schema)),
            (action, entity_type, entity_id, None if details is None else Jsonb(details)),
        )
        row = cur.fetchone()
    assert row is not None
    return int(row[0])
