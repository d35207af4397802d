"""asyncpg: transactions that carry the context in force
(``auditsql.integrations.context``).

``transaction(conn)`` starts with ``BEGIN; SELECT audit.set_context(...)``
in one simple-protocol message: the round trip ``BEGIN`` costs anyway.
asyncpg's own ``conn.transaction()`` refuses to run inside a transaction it
did not start, so nest ``transaction(conn)`` for a savepoint instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count
from typing import Any

from psycopg import sql

from auditsql.context import DEFAULT_SCHEMA
from auditsql.integrations.context import (
    begin_sql, current, pop_context_sql, set_context_sql,
)

_savepoints = count(1)


@asynccontextmanager
async def transaction(conn: Any, *, schema: str = DEFAULT_SCHEMA) -> AsyncIterator[Any]:
    """A transaction on the asyncpg connection *conn* whose writes carry the
    context in force: committed when the block ends normally, rolled back
    on an exception. Inside an open transaction, a savepoint whose writes
    carry the context in force; the enclosing one's is restored after it."""
    context = current()
    if not conn.is_in_transaction():
        try:
            await conn.execute(begin_sql(context, schema))
        except BaseException:
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            raise
        try:
            yield conn
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        return
    name = sql.Identifier(f"auditsql_{next(_savepoints)}").as_string(None)
    await conn.execute(f"SAVEPOINT {name}; {set_context_sql(context, schema, 'push_context')}")
    try:
        yield conn
    except BaseException:
        await conn.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
        raise
    await conn.execute(f"{pop_context_sql(schema)}; RELEASE SAVEPOINT {name}")


@asynccontextmanager
async def acquire(pool: Any, *, schema: str = DEFAULT_SCHEMA, **kwargs: Any) -> AsyncIterator[Any]:
    """A connection from an ``asyncpg.Pool`` (*kwargs* go to
    ``pool.acquire()``) in a ``transaction`` carrying the context in force."""
    async with pool.acquire(**kwargs) as conn, transaction(conn, schema=schema):
        yield conn
