"""Helpers of the integration tests."""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import make_conninfo

from tests.harness.pgbouncer import PgBouncer
from tests.sql.sqltools import Conn, scalar

ROW_EVENTS = "e.entity_type = 'public.notes' AND e.action IN ('created', 'updated', 'deleted')"


def via(bouncer: PgBouncer | None, dsn: str) -> str:
    """*dsn*, through *bouncer* if given."""
    if bouncer is None:
        return dsn
    return make_conninfo(dsn, **bouncer.dsn_params())


def misattributed(conn: Conn) -> list[dict[str, Any]]:
    """Events on ``notes`` whose actor or request is not the one that wrote
    the row (NULL where the row says NULL): must be none."""
    return conn.execute(
        "SELECT e.id, e.action, e.actor_id, e.request_id, coalesce(e.after, e.before)"
        f" FROM audit.events AS e WHERE {ROW_EVENTS} AND ("
        " e.actor_id IS DISTINCT FROM coalesce(e.after, e.before) ->> 'author'"
        " OR e.request_id IS DISTINCT FROM coalesce(e.after, e.before) ->> 'request')"
        " ORDER BY e.id").fetchall()


def note_events(conn: Conn) -> int:
    """How many events ``notes`` has."""
    return int(scalar(conn, f"SELECT count(*) FROM audit.events AS e WHERE {ROW_EVENTS}"))


def sa_url(dsn: str, drivername: str) -> Any:
    """A SQLAlchemy URL for *dsn* with *drivername* (``postgresql+asyncpg``)."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy import URL

    params = conninfo_to_dict(dsn)
    host = str(params["host"])
    if host.startswith("/"):
        return URL.create(drivername, username=str(params["user"]),
                          database=str(params["dbname"]),
                          query={"host": host, "port": str(params["port"])})
    return URL.create(drivername, username=str(params["user"]), host=host,
                      port=int(params["port"]), database=str(params["dbname"]))


def workload(count: int, forwarded_for: bool = False) -> list[dict[str, Any]]:
    """*count* POST /notes requests: each with a request id, four in five
    with a user (x-user), one in three of those nested, one in seven
    failing; with *forwarded_for*, an x-forwarded-for address each."""
    requests = []
    for i in range(count):
        headers = {"x-request-id": f"req-{i}"}
        if forwarded_for:
            headers["x-forwarded-for"] = f"198.51.100.{i % 250 + 1}"
        if i % 5 != 4:
            headers["x-user"] = f"user-{i}"
        requests.append({"headers": headers,
                         "json": {"nested": i % 3 == 0 and "x-user" in headers,
                                  "fail": i % 7 == 6}})
    return requests


async def drive(app: Any, requests: list[dict[str, Any]]) -> list[Any]:
    """Sends *requests* to the ASGI *app* all at once; their responses."""
    import asyncio

    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return list(await asyncio.gather(*(
            client.post("/notes", json=r["json"], headers=r["headers"]) for r in requests)))


def assert_each_request_recorded_as_its_own(conn: Conn, requests: list[dict[str, Any]],
                                            responses: list[Any]) -> list[int]:
    """The failing requests failed and left no event; every other one left
    its events (two, three when nested), each with its own user and request
    id. Returns the failing requests' numbers."""
    failing = [i for i, r in enumerate(requests) if r["json"]["fail"]]
    assert [i for i, r in enumerate(responses) if r.status_code != 200] == failing
    expected = sum(0 if r["json"]["fail"] else 3 if r["json"]["nested"] else 2 for r in requests)
    assert note_events(conn) == expected
    assert misattributed(conn) == []
    assert scalar(conn, "SELECT count(*) FROM audit.events WHERE request_id = ANY(%s)",
                  ([f"req-{i}" for i in failing],)) == 0
    return failing
