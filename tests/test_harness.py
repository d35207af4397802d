"""Checks of the test harness itself: server, fresh databases, roles."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.harness.roles import MakeRole
from tests.harness.server import Server


def one(dsn: str, query: str, params: tuple[Any, ...] | None = None) -> Any:
    """First column of the first row of *query*."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_server_version(pg: Server) -> None:
    assert pg.version_num >= 140000
    assert one(pg.dsn(), "SHOW server_version_num") == str(pg.version_num)
    assert one(pg.dsn(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")


def test_db_is_empty_and_fresh(pg: Server, db: str) -> None:
    tables = one(
        db,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
    )
    assert tables == 0
    assert one(db, "SELECT current_database()").startswith("auditsql_t_")
    assert one(db, "SELECT pg_encoding_to_char(encoding) FROM pg_database"
                   " WHERE datname = current_database()") == "UTF8"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")


def test_db_is_dropped(pg: Server, db: str) -> None:
    """Earlier tests' databases are gone; only this one remains."""
    left = one(pg.dsn(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'auditsql\\_t\\_%'")
    assert left == 1


def test_make_role(pg: Server, db: str, make_role: MakeRole) -> None:
    plain = make_role()
    creator = make_role("CREATEDB", prefix="creator")
    assert plain != creator
    assert one(db, "SELECT rolcanlogin AND NOT rolsuper FROM pg_roles WHERE rolname = %s",
               (plain,))
    assert one(db, "SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", (creator,))
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE owned (x int); ALTER TABLE owned OWNER TO "{plain}"')
    dbname = str(conninfo_to_dict(db)["dbname"])
    assert one(pg.dsn(dbname, user=plain), "SELECT current_user") == plain


def test_roles_are_dropped(pg: Server) -> None:
    assert one(pg.dsn(), "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'auditsql\\_r\\_%'") == 0


def test_tcp_client_address(pg: Server) -> None:
    if pg.cluster is None:
        pytest.skip("needs a throwaway local cluster")
    addr = one(pg.dsn(host="127.0.0.1"), "SELECT inet_client_addr()::text")
    assert addr in ("127.0.0.1/32", "127.0.0.1")
