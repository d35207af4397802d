"""psycopg 3 (sync, async, psycopg_pool): transactions that carry the
context in force (``auditsql.integrations.context``).

``transaction(conn)`` opens a transaction whose first message is
``BEGIN; SELECT audit.set_context(...)``: the same one round trip as the
``BEGIN`` psycopg sends anyway, so the context costs none. Inside an open
transaction it makes a savepoint instead, where it saves the enclosing
context, sets the one in force, and restores the enclosing one at the end
(``push_context`` / ``pop_context``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.pq import TransactionStatus

from auditsql.context import DEFAULT_SCHEMA
from auditsql.integrations.context import (
    AuditContext, begin_sql, current, pop_context_sql, set_context_sql,
)

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)


def begin(conn: psycopg.Connection[Any], context: AuditContext | None = None, *,
          schema: str = DEFAULT_SCHEMA) -> None:
    """Open a transaction on the idle *conn* carrying *context* (default: the
    one in force), in one round trip, whether or not *conn* is in
    autocommit mode. The transaction then ends as any other:
    ``conn.commit()`` or ``conn.rollback()``.

    Sent through libpq directly (``conn.pgconn``): psycopg itself would
    first send a ``BEGIN`` of its own on a connection out of autocommit.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise psycopg.ProgrammingError("auditsql: begin() needs an idle connection, "
                                       "outside any transaction")
    if context is None:
        context = current()
    query = begin_sql(context, schema).encode(conn.info.encoding)
    with conn.lock:
        result = conn.pgconn.exec_(query)
    if result.status not in _OK:
        error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.rollback()
        raise error


def apply(conn: psycopg.Connection[Any], context: AuditContext | None = None, *,
          schema: str = DEFAULT_SCHEMA) -> None:
    """Set *context* (default: the one in force) in the transaction open on
    *conn*, for the rest of it (one statement, one round trip)."""
    conn.execute(set_context_sql(current() if context is None else context, schema))


@contextmanager
def transaction(conn: psycopg.Connection[Any], *,
                schema: str = DEFAULT_SCHEMA) -> Iterator[psycopg.Connection[Any]]:
    """A transaction whose writes carry the context in force: commits when
    the block ends normally, rolls back on an exception. Inside an open
    transaction, a savepoint whose writes carry the context in force; the
    enclosing transaction's context is restored when it ends."""
    context = current()
    if conn.info.transaction_status == TransactionStatus.IDLE:
        begin(conn, context, schema=schema)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return
    with conn.transaction():
        conn.execute(set_context_sql(context, schema, "push_context"))
        yield conn
        conn.execute(pop_context_sql(schema))


@asynccontextmanager
async def async_transaction(conn: psycopg.AsyncConnection[Any], *,
                            schema: str = DEFAULT_SCHEMA,
                            ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """``transaction`` for an ``AsyncConnection``. In autocommit mode (the
    way to configure an async pool for it) the context travels with
    ``BEGIN`` in one round trip; out of it, psycopg sends its ``BEGIN``
    first and the context costs one more."""
    context = current()
    if conn.info.transaction_status == TransactionStatus.IDLE:
        try:
            if conn.autocommit:
                await conn.execute(begin_sql(context, schema))
            else:
                await conn.execute(set_context_sql(context, schema))
        except BaseException:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.rollback()
            raise
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
        return
    async with conn.transaction():
        await conn.execute(set_context_sql(context, schema, "push_context"))
        yield conn
        await conn.execute(pop_context_sql(schema))


@contextmanager
def connection(pool: Any, *, schema: str = DEFAULT_SCHEMA,
               **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
    """A connection from a ``psycopg_pool.ConnectionPool`` (*kwargs* go to
    ``pool.connection()``), in a ``transaction`` that carries the context
    in force."""
    with pool.connection(**kwargs) as conn, transaction(conn, schema=schema):
        yield conn


@asynccontextmanager
async def async_connection(pool: Any, *, schema: str = DEFAULT_SCHEMA,
                           **kwargs: Any) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """``connection`` for a ``psycopg_pool.AsyncConnectionPool``."""
    async with pool.connection(**kwargs) as conn, async_transaction(conn, schema=schema):
        yield conn
