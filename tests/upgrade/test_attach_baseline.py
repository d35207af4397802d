"""Upgrading an installation made by an earlier build, whose attach called
its last parameter p_baseline: afterwards there is one attach, whose last
parameter is baseline, with the rights a fresh install gives it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from auditsql import installer
from auditsql.render import Settings

ATTACH = """
    SELECT p.proargnames, pg_get_function_identity_arguments(p.oid), p.proacl::text,
           pg_get_userbyid(p.proowner)
    FROM pg_proc AS p
    WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = 'attach'"""


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture
def fresh_acl(db: str) -> str:
    """The rights on attach as this version installs them."""
    with psycopg.connect(db) as conn:
        installer.install(conn, Settings())
    [(_, _, acl, _)] = rows(db, ATTACH)
    return str(acl)


@pytest.fixture
def installed_0_2_0(db: str, fresh_acl: str) -> str:
    """This version installed, then made what the earlier build left:
    attach with p_baseline (its definition otherwise the same, owned by the
    owner role, with no rights granted)."""
    with psycopg.connect(db) as conn:
        (definition,), = conn.execute(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc AS p"
            " WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = 'attach'").fetchall()
        old = (definition.replace("baseline boolean DEFAULT false", "p_baseline boolean DEFAULT false")
                         .replace("IF attach.baseline THEN", "IF p_baseline THEN"))
        assert old.count("p_baseline") == 2
        conn.execute("SET LOCAL auditsql.permit_ddl = on")
        conn.execute("SET LOCAL ROLE auditsql_owner")
        conn.execute("DROP FUNCTION audit.attach(regclass, text[], text, text[], text[], jsonb,"
                     " boolean, boolean, boolean)")
        conn.execute(old.encode())
        conn.execute("RESET ROLE")
    [(names, _, _, _)] = rows(db, ATTACH)
    assert names[-1] == "p_baseline"
    return db


def test_upgrade_leaves_one_attach_whose_last_parameter_is_baseline(
        installed_0_2_0: str, fresh_acl: str) -> None:
    with psycopg.connect(installed_0_2_0) as conn:
        installer.upgrade(conn, "audit")
    [(names, arguments, acl, owner)] = rows(installed_0_2_0, ATTACH)
    assert names[-1] == "baseline" and "p_baseline" not in names
    assert arguments.endswith(", baseline boolean")
    assert owner == "auditsql_owner"
    assert acl == fresh_acl
    with psycopg.connect(installed_0_2_0, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
        conn.execute("SELECT audit.attach('t', baseline => true)")
        (recorded,), = conn.execute(
            "SELECT count(*) FROM audit.events WHERE action = 'snapshot'").fetchall()
    assert recorded == 2
