"""Install auditsql and attach or detach tables. Each public function runs
in one transaction: it applies completely or not at all."""

from __future__ import annotations

import psycopg
from psycopg import sql

from auditsql import catalog, db, errors, retention
from auditsql.render import Settings, install_sql

def install(conn: psycopg.Connection, settings: Settings, retention_policy: str | None = None) -> str:
    """Install (or re-install) auditsql; returns the installed version.

    With *retention_policy* (financial, medical, saas or an interval) the
    retention policy is set in the same transaction, so a bad policy leaves
    nothing behind.
    """
    script = install_sql(settings, conn.info.server_version)
    with db.transaction(conn) as cur:
        cur.execute(script.encode())
        version = catalog.require_installed(cur, settings.schema)
        if retention_policy is not None:
            retention.set_policy_in(cur, settings.schema, retention_policy)
        return version


def set_retention_sql(conn: psycopg.Connection, settings: Settings, policy: str) -> str:
    """The statement that sets the retention policy, for ``install --dry-run``."""
    retention.check_policy_text(policy)
    return sql.SQL("SELECT {}.set_retention({});\n").format(
        sql.Identifier(settings.schema), sql.Literal(policy)
    ).as_string(conn)


def attach(
    conn: psycopg.Connection,
    tables: list[str],
    settings: Settings,
    id_columns: list[str] | None = None,
) -> list[str]:
    """Start auditing ``tables``; returns their qualified names."""
    return _for_each_table(conn, tables, settings, "attach", id_columns)


def detach(conn: psycopg.Connection, tables: list[str], settings: Settings) -> list[str]:
    """Stop auditing ``tables``; returns their qualified names."""
    return _for_each_table(conn, tables, settings, "detach")


def _for_each_table(
    conn: psycopg.Connection,
    tables: list[str],
    settings: Settings,
    function: str,
    *args: object,
) -> list[str]:
    """Call ``audit.<function>(table, *args)`` on each table, in one transaction."""
    placeholders = [sql.SQL("%s::oid::regclass"), *(sql.Placeholder() for _ in args)]
    query = sql.SQL("SELECT {}.{}({})").format(
        sql.Identifier(settings.schema), sql.Identifier(function), sql.SQL(", ").join(placeholders)
    )
    with db.transaction(conn) as cur:
        catalog.require_installed(cur, settings.schema)
        names = []
        for name in tables:
            oid, qualified = catalog.resolve_table(cur, name)
            cur.execute(query, (oid, *args))
            names.append(qualified)
        return names


def parse_id_columns(value: str | None) -> list[str] | None:
    """Split ``a,b`` into column names; surrounding spaces are ignored."""
    if value is None:
        return None
    columns = [part.strip() for part in value.split(",")]
    if not columns or any(not c for c in columns):
        raise errors.InvalidName(f"invalid --id-columns {value!r}: expected names like a,b")
    return columns
