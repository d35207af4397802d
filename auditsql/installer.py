"""Install auditsql and attach or detach tables. Each public function runs
in one transaction: it applies completely or not at all."""

from __future__ import annotations

import psycopg
from psycopg import sql

from dataclasses import dataclass

from auditsql import __version__, catalog, db, errors
from auditsql.render import Settings, install_sql


def install(conn: psycopg.Connection, settings: Settings) -> str:
    """Install (or re-install) auditsql; returns the installed version.

    A superuser's install also creates the event triggers that refuse DDL
    weakening auditing; another role's cannot.
    """
    with db.transaction(conn) as cur:
        cur.execute(install_script(cur, settings).encode())
        return catalog.require_installed(cur, settings.schema)


def install_script(cur: psycopg.Cursor, settings: Settings) -> str:
    """The install script for this server and the connected role."""
    return install_sql(settings, cur.connection.info.server_version,
                       event_trigger=catalog.is_superuser(cur))


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did."""

    from_version: str
    to_version: str
    refreshed: list[str]  # tables whose capture triggers were created again


def upgrade(conn: psycopg.Connection, schema: str) -> Upgrade:
    """Run this version's install script over an existing installation, with
    the settings it was installed with, then attach again every audited
    table whose capture triggers are missing, disabled, changed or made by
    another version. One transaction; refused when nothing is installed."""
    with db.transaction(conn) as cur:
        installed = catalog.installation(cur, schema)
        cur.execute(install_script(cur, installed.settings).encode())
        by_oid = {o.objid: o for o in catalog.catalog_objects(cur, schema) if o.kind == "trigger"}
        refreshed = []
        for table in catalog.capture_tables(cur, schema):
            if table.exists and catalog.capture_problems(table, by_oid, __version__):
                columns = table.id_columns if table.id_source == "explicit" else None
                attach = sql.SQL("SELECT {}.attach(%s::oid::regclass, %s)").format(
                    sql.Identifier(schema))
                cur.execute(attach, (table.relid, columns))
                refreshed.append(table.entity_type)
        return Upgrade(installed.version, catalog.require_installed(cur, schema), refreshed)


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
