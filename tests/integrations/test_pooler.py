"""Attribution through a real PgBouncer: many client connections share few
server connections, and every event carries the actor and request of the
transaction that caused it. The same workload runs in transaction pooling,
session pooling and on direct connections, through psycopg and asyncpg."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest

from auditsql.integrations import asyncpg as audit_asyncpg
from auditsql.integrations import psycopg as audit_psycopg
from auditsql.integrations.context import AuditContext, bind
from tests.integrations.conftest import Bouncer
from tests.integrations.tools import misattributed, note_events, via
from tests.sql.sqltools import Conn, scalar

CLIENTS = 24
REQUESTS_PER_CLIENT = 6
SERVER_CONNECTIONS = 3
# PgBouncer before 1.21 cannot keep a prepared statement from one
# transaction to the next: the clients must not prepare any.
PSYCOPG_OPTIONS: dict[str, Any] = {"prepare_threshold": None}
ASYNCPG_OPTIONS: dict[str, Any] = {"statement_cache_size": 0}


def request_context(client: int, number: int) -> AuditContext | None:
    """The context of one request; every fifth runs without one, so that a
    context left on a server connection would show."""
    if number % 5 == 4:
        return None
    return AuditContext.of(actor_id=f"user-{client}-{number}", role="member",
                           request_id=f"req-{client}-{number}")


def expected_events() -> int:
    # Each request: insert, update; with a context, a nested block's insert too.
    with_context = sum(request_context(0, n) is not None for n in range(REQUESTS_PER_CLIENT))
    return CLIENTS * (2 * REQUESTS_PER_CLIENT + with_context)


INSERT = "INSERT INTO notes (author, request, body) VALUES (%s, %s, 'x') RETURNING id"
UPDATE = "UPDATE notes SET body = 'y' FROM pg_sleep(0.001) WHERE id = %s"


def psycopg_client(dsn: str, client: int, reconnect: bool, errors: list[BaseException]) -> None:
    conn: psycopg.Connection[Any] | None = None
    try:
        for number in range(REQUESTS_PER_CLIENT):
            if conn is None:
                conn = psycopg.connect(dsn, autocommit=number % 2 == 0, **PSYCOPG_OPTIONS)
            context = request_context(client, number)
            author = context.actor_id if context else None
            request = context.request_id if context else None
            with bind(context) if context else _same():
                with audit_psycopg.transaction(conn):
                    row = conn.execute(INSERT, (author, request)).fetchone()
                    if context is not None:
                        inner = context.with_values(actor_id=f"{author}-inner")
                        with bind(inner), audit_psycopg.transaction(conn):
                            conn.execute(INSERT, (inner.actor_id, request))
                    assert row is not None
                    conn.execute(UPDATE, (row[0],))
            if reconnect:
                conn.close()
                conn = None
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        if conn is not None:
            conn.close()


class _same:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def run_psycopg(dsn: str, reconnect: bool) -> None:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=psycopg_client, args=(dsn, c, reconnect, errors))
               for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


async def asyncpg_client(dsn: str, client: int, reconnect: bool) -> None:
    import asyncpg

    conn = None
    try:
        for number in range(REQUESTS_PER_CLIENT):
            if conn is None:
                conn = await asyncpg.connect(dsn, **ASYNCPG_OPTIONS)
            context = request_context(client, number)
            author = context.actor_id if context else None
            request = context.request_id if context else None
            with bind(context) if context else _same():
                async with audit_asyncpg.transaction(conn):
                    row_id = await conn.fetchval(INSERT.replace("%s", "$1", 1).replace("%s", "$2"),
                                                 author, request)
                    if context is not None:
                        inner = context.with_values(actor_id=f"{author}-inner")
                        with bind(inner):
                            async with audit_asyncpg.transaction(conn):
                                await conn.execute(
                                    INSERT.replace("%s", "$1", 1).replace("%s", "$2"),
                                    inner.actor_id, request)
                    await conn.execute(UPDATE.replace("%s", "$1"), row_id)
            if reconnect:
                await conn.close()
                conn = None
    finally:
        if conn is not None:
            await conn.close()


def run_asyncpg(dsn: str, reconnect: bool) -> None:
    async def main() -> None:
        await asyncio.gather(*(asyncpg_client(dsn, c, reconnect) for c in range(CLIENTS)))
    asyncio.run(main())


def uri(dsn: str) -> str:
    """*dsn* as a URI, which asyncpg takes."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    host, port, user, name = params["host"], params["port"], params["user"], params["dbname"]
    if str(host).startswith("/"):
        return f"postgresql://{user}@/{name}?host={host}&port={port}"
    return f"postgresql://{user}@{host}:{port}/{name}"


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
@pytest.mark.parametrize("mode", ["transaction", "session", "direct"])
def test_every_event_carries_its_requests_actor(
        mode: str, driver: str, notes_db: str, su: Conn, pgbouncer: Bouncer) -> None:
    """Zero events with another request's actor or request id, zero with a
    missing one where one was set, zero with one where none was; the nested
    block's writes carry its own actor and the writes after it the
    request's again."""
    bouncer = None if mode == "direct" else pgbouncer(mode, SERVER_CONNECTIONS)
    # Session pooling ties a server connection to a client until it
    # disconnects: clients share them by connecting per request.
    reconnect = mode == "session"
    dsn = via(bouncer, notes_db)
    if driver == "psycopg":
        run_psycopg(dsn, reconnect)
    else:
        run_asyncpg(uri(dsn), reconnect)
    assert note_events(su) == expected_events()
    assert misattributed(su) == []
    if bouncer is not None and mode == "transaction":
        # The clients really shared the server connections.
        assert scalar(su, "SELECT count(*) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                      ) <= SERVER_CONNECTIONS


@pytest.mark.parametrize("mode", ["transaction", "direct"])
def test_autocommit_statements_carry_no_context_set_before_them(
        mode: str, notes_db: str, su: Conn, pgbouncer: Bouncer) -> None:
    """In autocommit mode each statement is its own transaction: a context
    set by one statement is gone at the next, through a pooler or not. Only
    a transaction opened by ``transaction(conn)`` carries it."""
    bouncer = None if mode == "direct" else pgbouncer(mode, 1)
    with psycopg.connect(via(bouncer, notes_db), autocommit=True, **PSYCOPG_OPTIONS) as conn, \
            bind(AuditContext.of(actor_id="alice", request_id="r1")):
        audit_psycopg.apply(conn)
        conn.execute(INSERT, (None, None))
        with audit_psycopg.transaction(conn):
            conn.execute(INSERT, ("alice", "r1"))
        conn.execute(INSERT, (None, None))
    assert note_events(su) == 3
    assert misattributed(su) == []
