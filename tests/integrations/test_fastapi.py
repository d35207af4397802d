"""A FastAPI app with async SQLAlchemy (asyncpg), the ASGI middleware and the
actor dependency, driven by its test client with concurrent requests as
different users, directly and through PgBouncer in transaction pooling."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("asyncpg")

import httpx  # noqa: E402
from fastapi import Depends, FastAPI, Header, HTTPException  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine  # noqa: E402

from auditsql.integrations.context import bind, current  # noqa: E402
from auditsql.integrations.sqlalchemy import instrument  # noqa: E402
from auditsql.integrations.starlette import AuditContextMiddleware, actor_dependency  # noqa: E402
from tests.integrations.conftest import Bouncer  # noqa: E402
from tests.integrations.tools import (  # noqa: E402
    assert_each_request_recorded_as_its_own, drive, sa_url, via, workload)
from tests.sql.sqltools import Conn, scalar  # noqa: E402

INSERT = text("INSERT INTO notes (author, request, body) VALUES (:a, :r, :b) RETURNING id")


async def current_user(x_user: str | None = Header(default=None)) -> dict[str, Any] | None:
    """The test's authentication: the user named by a header."""
    if x_user is None:
        return None
    return {"id": x_user, "email": f"{x_user}@example.com", "role": "member"}


def make_app(engine: AsyncEngine) -> FastAPI:
    sessions = async_sessionmaker(engine)
    app = FastAPI()
    app.add_middleware(AuditContextMiddleware, trusted_proxy_header="x-forwarded-for")
    audit_actor = actor_dependency(current_user)

    @app.post("/notes")
    async def post_note(body: dict[str, Any],
                        user: dict[str, Any] | None = Depends(audit_actor)) -> dict[str, Any]:
        context = current()
        assert context is not None
        author = user["id"] if user else None
        async with sessions() as session, session.begin():
            await session.execute(INSERT, {"a": author, "r": context.request_id, "b": "x"})
            if body.get("nested"):
                inner = f"{author}-inner"
                with bind(actor_id=inner):
                    async with session.begin_nested():
                        await session.execute(INSERT, {"a": inner, "r": context.request_id,
                                                       "b": "inner"})
            await asyncio.sleep(0)
            await session.execute(INSERT, {"a": author, "r": context.request_id, "b": "after"})
            if body.get("fail"):
                raise HTTPException(status_code=409, detail="refused")
        return {"request_id": context.request_id}

    return app


def engine_for(dsn: str, pooled: bool) -> AsyncEngine:
    args: dict[str, Any] = {}
    if pooled:
        # PgBouncer in transaction pooling keeps no prepared statement from
        # one transaction to the next: unique names, no caches.
        args = {"statement_cache_size": 0,
                "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__"}
    url = sa_url(dsn, "postgresql+asyncpg")
    if pooled:
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    engine = create_async_engine(url, pool_size=2,
                                 max_overflow=0, connect_args=args)
    instrument(engine)
    return engine


@pytest.mark.parametrize("mode", ["direct", "transaction"])
def test_every_write_carries_its_requests_user(
        mode: str, notes_db: str, su: Conn, pgbouncer: Bouncer) -> None:
    """Every event carries its request's user and request id (none for an
    anonymous request, though it shares pooled connections with the
    others); a request that fails rolls back its events with its writes."""
    bouncer = None if mode == "direct" else pgbouncer("transaction", 2)
    engine = engine_for(via(bouncer, notes_db), pooled=bouncer is not None)
    requests = workload(40, forwarded_for=True)

    async def run() -> list[httpx.Response]:
        try:
            return await drive(make_app(engine), requests)
        finally:
            await engine.dispose()

    responses = asyncio.run(run())
    failing = assert_each_request_recorded_as_its_own(su, requests, responses)
    assert scalar(su, "SELECT count(*) FROM notes WHERE request = ANY(%s)",
                  ([f"req-{i}" for i in failing],)) == 0
    # The client's address from the trusted proxy header, and the email
    # and role the dependency named.
    assert scalar(su, "SELECT host(ip_address) || ' ' || actor_email || ' ' || actor_role"
                      " FROM audit.events WHERE request_id = 'req-1' LIMIT 1"
                  ) == "198.51.100.2 user-1@example.com member"
