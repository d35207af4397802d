"""psycopg_pool: the sync and async pools' connections, in transactions
that carry the context in force, shared by many threads and tasks, directly
and through a transaction-pooling PgBouncer (fewer server connections than
the pool holds)."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("psycopg_pool")

from psycopg_pool import AsyncConnectionPool, ConnectionPool  # noqa: E402

from auditsql.integrations import psycopg as audit_psycopg  # noqa: E402
from auditsql.integrations.context import AuditContext, bind  # noqa: E402
from tests.integrations.conftest import Bouncer  # noqa: E402
from tests.integrations.tools import misattributed, note_events, via  # noqa: E402
from tests.sql.sqltools import Conn  # noqa: E402

INSERT = "INSERT INTO notes (author, request, body) VALUES (%s, %s, 'x')"
CLIENTS = 12
REQUESTS = 4
POOLED = pytest.mark.parametrize("mode", ["transaction", "direct"])


def context(client: int, number: int) -> AuditContext:
    actor = None if number % 4 == 3 else f"user-{client}-{number}"
    return AuditContext.of(actor_id=actor, request_id=f"req-{client}-{number}")


@POOLED
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactions"])
def test_sync_pool(autocommit: bool, mode: str, notes_db: str, su: Conn,
                   pgbouncer: Bouncer) -> None:
    errors: list[BaseException] = []
    dsn = via(None if mode == "direct" else pgbouncer(mode, 1), notes_db)

    def configure(conn: object) -> None:
        conn.autocommit = autocommit  # type: ignore[attr-defined]

    with ConnectionPool(dsn, min_size=2, max_size=2, configure=configure,
                        kwargs={"prepare_threshold": None}) as pool:
        def client(number: int) -> None:
            try:
                for n in range(REQUESTS):
                    ctx = context(number, n)
                    with bind(ctx), audit_psycopg.connection(pool) as conn:
                        conn.execute(INSERT, (ctx.actor_id, ctx.request_id))
                        conn.execute(INSERT, (ctx.actor_id, ctx.request_id))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert note_events(su) == 2 * CLIENTS * REQUESTS
    assert misattributed(su) == []


@POOLED
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactions"])
def test_async_pool(autocommit: bool, mode: str, notes_db: str, su: Conn,
                    pgbouncer: Bouncer) -> None:
    dsn = via(None if mode == "direct" else pgbouncer(mode, 1), notes_db)

    async def configure(conn: object) -> None:
        await conn.set_autocommit(autocommit)  # type: ignore[attr-defined]

    async def main() -> None:
        async with AsyncConnectionPool(dsn, min_size=2, max_size=2, configure=configure,
                                       kwargs={"prepare_threshold": None},
                                       open=False) as pool:
            async def client(number: int) -> None:
                for n in range(REQUESTS):
                    ctx = context(number, n)
                    with bind(ctx):
                        async with audit_psycopg.async_connection(pool) as conn:
                            await conn.execute(INSERT, (ctx.actor_id, ctx.request_id))
                            await asyncio.sleep(0)
                            await conn.execute(INSERT, (ctx.actor_id, ctx.request_id))

            await asyncio.gather(*(client(c) for c in range(CLIENTS)))

    asyncio.run(main())
    assert note_events(su) == 2 * CLIENTS * REQUESTS
    assert misattributed(su) == []
