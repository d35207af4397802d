"""Throwaway roles. Roles belong to the whole cluster, so each test's get
unique names and are dropped, with what they own, when it ends."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from tests.harness.databases import unique_name
from tests.harness.server import ROLE_PASSWORD, Server

# Names of the roles make_role creates (tests/test_harness.py counts them).
TEST_ROLE_PREFIX = "auditsql_r"

# ``make_role("CREATEDB", prefix="app") -> name`` (see the make_role fixture).
MakeRole = Callable[..., str]


def create_login_role(pg: Server, *attributes: str, prefix: str = TEST_ROLE_PREFIX) -> str:
    """CREATE ROLE with LOGIN, *attributes* and ``ROLE_PASSWORD``; its name."""
    name = unique_name(prefix)
    options = sql.SQL(" ").join(sql.SQL(a) for a in ("LOGIN", *attributes))
    pg.admin().execute(
        sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
            sql.Identifier(name), options, sql.Literal(ROLE_PASSWORD)
        )
    )
    return name


def _databases_depending_on(conn: psycopg.Connection[Any], role: str) -> list[str]:
    """Databases holding objects owned by, or privileges granted to, *role*."""
    rows = conn.execute(
        """
        SELECT DISTINCT d.datname
        FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass
          AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)
          AND d.datallowconn
        """,
        (role,),
    ).fetchall()
    return [r[0] for r in rows]


def drop_role(pg: Server, role: str) -> None:
    """Disconnect, DROP OWNED everywhere it matters, then DROP ROLE; ignore errors."""
    ident = sql.Identifier(role)
    try:
        conn = pg.admin()
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (role,),
        )
        for dbname in _databases_depending_on(conn, role):
            with pg.connect(dbname) as other:
                other.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(ident))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
    except psycopg.Error as exc:
        warnings.warn(f"could not drop test role {role}: {exc}", stacklevel=1)
