"""Checks of the test harness itself: server, fresh databases, installed
databases copied from a template, roles."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from auditsql import installer
from auditsql.render import Settings, guard_schema_name
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole, drop_role
from tests.harness.server import Server
from tests.harness.templates import Recipe, Templates, roles_of


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


def test_throwaway_clusters_run_without_jit(pg: Server) -> None:
    """JIT would compile the first queries on every new database (see
    CLUSTER_SETTINGS)."""
    if pg.cluster is None:
        pytest.skip("needs a throwaway local cluster")
    assert one(pg.dsn(), "SHOW jit") == "off"


def test_tcp_client_address(pg: Server) -> None:
    if pg.cluster is None:
        pytest.skip("needs a throwaway local cluster")
    addr = one(pg.dsn(host="127.0.0.1"), "SELECT inet_client_addr()::text")
    assert addr in ("127.0.0.1/32", "127.0.0.1")


# --------------------------------------------------------------------------
# Installed databases: copies of a template (tests/harness/templates.py)
# --------------------------------------------------------------------------

DEFAULT = Settings()


def install_snapshot(dsn: str, settings: Settings = DEFAULT) -> dict[str, Any]:
    """What an install made in the database at *dsn*, by name (never by
    OID, which differ from one install to another): every object auditsql
    fingerprints, with its owner, state, digest and comment; the privileges
    on the schemas, relations and functions; the event triggers; the rows of
    every table of the audit schema, but the time of the installation."""
    schemas = [settings.schema, guard_schema_name(settings.schema)]
    queries: dict[str, Any] = {
        "objects": sql.SQL("SELECT kind, identity, owner, enabled, digest, comment"
                           " FROM {}.fingerprints() ORDER BY kind, identity")
                   .format(sql.Identifier(settings.schema)),
        "schemas": """SELECT nspname::text, nspowner::regrole::text, nspacl::text
                      FROM pg_namespace WHERE nspname = ANY (%(schemas)s) ORDER BY 1""",
        "relations": """SELECT c.relname::text, c.relkind::text, c.relowner::regrole::text,
                               c.relacl::text
                        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                        WHERE n.nspname = ANY (%(schemas)s) ORDER BY 1""",
        "functions": """SELECT p.oid::regprocedure::text, p.proowner::regrole::text,
                               p.proacl::text, p.prosecdef, p.proconfig::text
                        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
                        WHERE n.nspname = ANY (%(schemas)s) ORDER BY 1""",
        "default privileges": """SELECT defaclrole::regrole::text, defaclobjtype::text,
                                        defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3""",
        "event triggers": """SELECT evtname::text, evtevent::text, evtenabled::text,
                                    evtfoid::regprocedure::text, evtowner::regrole::text
                             FROM pg_event_trigger ORDER BY 1""",
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        found: dict[str, Any] = {
            what: conn.execute(query, {"schemas": schemas}).fetchall()
            for what, query in queries.items()}
        tables = conn.execute(
            "SELECT c.relname::text FROM pg_class AS c JOIN pg_namespace AS n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (settings.schema,)).fetchall()
        for (table,) in tables:
            found[f"rows of {table}"] = sorted(
                row for (row,) in conn.execute(
                    sql.SQL("SELECT (to_jsonb(t) - 'installed_at')::text FROM {} AS t").format(
                        sql.Identifier(settings.schema, table))))
    return found


def test_an_installed_db_is_what_install_makes(db: str, installed_db: str) -> None:
    """A copy of the template holds what an install into a new database holds."""
    with psycopg.connect(db) as conn:
        installer.install(conn, Settings())
    fresh, copy = install_snapshot(db), install_snapshot(installed_db)
    assert fresh["objects"] and fresh["event triggers"] and fresh["rows of installation"]
    assert copy == fresh


def installed_at(dsn: str) -> Any:
    return one(dsn, "SELECT installed_at FROM audit.installation")


def test_installed_dbs_are_copies_of_one_install(templates: Templates) -> None:
    """The install script runs once per session and recipe: two installed
    databases carry the same installation row, down to its time, and the
    template takes no connection."""
    with templates.installed_database() as first, templates.installed_database() as second:
        assert first != second
        assert installed_at(first) == installed_at(second)
    template = templates.template()
    assert templates.template() == template
    assert one(templates.pg.dsn(), "SELECT datallowconn FROM pg_database WHERE datname = %s",
               (template,)) is False


def test_a_template_is_installed_where_its_roles_exist(pg: Server) -> None:
    """A template whose roles do not exist yet is installed after they are
    created (by an install elsewhere), so its copies record, as installs
    record where auditsql's roles exist, that they created none."""
    settings = Settings(schema="harness_check", owner=unique_name("auditsql_r_own"),
                        reader=unique_name("auditsql_r_rd"), writer=unique_name("auditsql_r_wr"),
                        operator=unique_name("auditsql_r_op"), admin=unique_name("auditsql_r_adm"))
    templates = Templates(pg)
    try:
        with templates.installed_database(Recipe(settings)) as dsn:
            created = one(dsn, "SELECT settings -> 'created_roles' FROM harness_check.installation")
            assert created == []
            assert one(dsn, "SELECT count(*) FROM pg_roles WHERE rolname = ANY (%s)",
                       (roles_of(settings),)) == 5
            assert install_snapshot(dsn, settings)["objects"]
    finally:
        templates.drop()
        for role in roles_of(settings):
            drop_role(pg, role)
