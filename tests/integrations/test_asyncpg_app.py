"""An asyncpg app (Starlette, an asyncpg pool, the ASGI middleware) driven by
its test client with concurrent requests as different users, directly and
through PgBouncer in transaction pooling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("asyncpg")
pytest.importorskip("starlette")

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from auditsql.integrations import asyncpg as audit_asyncpg  # noqa: E402
from auditsql.integrations.context import bind, current, update  # noqa: E402
from auditsql.integrations.starlette import AuditContextMiddleware  # noqa: E402
from tests.integrations.conftest import Bouncer  # noqa: E402
from tests.integrations.test_pooler import uri  # noqa: E402
from tests.integrations.tools import (  # noqa: E402
    assert_each_request_recorded_as_its_own, drive, workload, via)
from tests.sql.sqltools import Conn  # noqa: E402

INSERT = "INSERT INTO notes (author, request, body) VALUES ($1, $2, $3)"


class Refused(Exception):
    pass


def make_app(pool: Any) -> Any:
    async def notes(request: Request) -> JSONResponse:
        user = request.headers.get("x-user")
        if user:
            update(actor_id=user, role="member")
        body = await request.json()
        context = current()
        assert context is not None
        rid = context.request_id
        try:
            async with audit_asyncpg.acquire(pool) as conn:
                await conn.execute(INSERT, user, rid, "x")
                if body.get("nested"):
                    with bind(actor_id=f"{user}-inner"):
                        async with audit_asyncpg.transaction(conn):
                            await conn.execute(INSERT, f"{user}-inner", rid, "inner")
                await asyncio.sleep(0)
                await conn.execute(INSERT, user, rid, "after")
                if body.get("fail"):
                    raise Refused
        except Refused:
            return JSONResponse({"refused": rid}, status_code=409)
        return JSONResponse({"request_id": rid})

    app = Starlette(routes=[Route("/notes", notes, methods=["POST"])])
    app.add_middleware(AuditContextMiddleware)
    return app


@pytest.mark.parametrize("mode", ["direct", "transaction"])
def test_every_write_carries_its_requests_user(
        mode: str, notes_db: str, su: Conn, pgbouncer: Bouncer) -> None:
    bouncer = None if mode == "direct" else pgbouncer("transaction", 2)
    requests = workload(40)

    async def run() -> list[httpx.Response]:
        pool = await asyncpg.create_pool(uri(via(bouncer, notes_db)), min_size=1, max_size=2,
                                         statement_cache_size=0)
        try:
            return await drive(make_app(pool), requests)
        finally:
            await pool.close()

    responses = asyncio.run(run())
    assert_each_request_recorded_as_its_own(su, requests, responses)
