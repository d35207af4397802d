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
