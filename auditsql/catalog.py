"""Read-only catalog queries: what is installed, what is tracked, and in
which state its triggers are. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from auditsql import errors

_ENABLED = {"A": "always", "O": "origin", "R": "replica", "D": "disabled"}


@dataclass(frozen=True)
class TriggerState:
    """One expected audit trigger and what the catalog says about it."""

    table: str
    name: str
    state: str  # always | origin | replica | disabled | missing


@dataclass(frozen=True)
class TrackedTable:
    """An audited table as recorded by attach()."""

    relid: int
    entity_type: str
    id_columns: list[str]
    id_source: str
    capture: str  # row | statement
    partitioned: bool
    capture_current: bool  # its capture function matches the table as it is now
    exclude: list[str] = field(default_factory=list)
    redact: list[str] = field(default_factory=list)
    on_change: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    triggers: list[TriggerState] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return (self.capture_current and bool(self.triggers)
                and all(t.state == "always" for t in self.triggers))


def installed_version(cur: psycopg.Cursor, schema: str) -> str | None:
    """The installed auditsql version in ``schema``, or None."""
    return _installation(cur, schema)[0]


def require_installed(cur: psycopg.Cursor, schema: str) -> str:
    """The installed version, or NotInstalled with what to do about it."""
    version, readable = _installation(cur, schema)
    if not readable:
        raise errors.PermissionDenied(
            f"role {cur.connection.info.user} may not read the audit schema {schema!r}; "
            "connect as a member of its owner or reader role"
        )
    if version is None:
        raise errors.NotInstalled(
            f"auditsql is not installed in schema {schema!r} of this database; "
            "run `auditsql install` first"
        )
    return version


def _installation(cur: psycopg.Cursor, schema: str) -> tuple[str | None, bool]:
    """(newest installed version or None, whether this role may read it)."""
    cur.execute(
        "SELECT has_table_privilege(rel, 'SELECT') "
        "FROM to_regclass(format('%%I.installation', %s::text)) AS rel WHERE rel IS NOT NULL",
        (schema,),
    )
    row = cur.fetchone()
    if row is None:
        return None, True
    if not row[0]:
        return None, False
    cur.execute(
        sql.SQL(
            "SELECT version FROM {}.installation ORDER BY installed_at DESC, ctid DESC LIMIT 1"
        ).format(sql.Identifier(schema))
    )
    found = cur.fetchone()
    return (found[0] if found else None), True


def resolve_table(cur: psycopg.Cursor, name: str) -> tuple[int, str]:
    """Resolve a table name as PostgreSQL would (``orders``, ``public.orders``,
    ``"My Table"``) to its oid and its schema-qualified, quoted name."""
    if not name.strip() or "\x00" in name:
        raise errors.InvalidName(f"invalid table name: {name!r}")
    try:
        with cur.connection.transaction():
            # parse_ident rejects bad syntax on every version; to_regclass
            # returns NULL for it on PostgreSQL 16+.
            cur.execute(
                "SELECT c.oid, format('%%I.%%I', n.nspname, c.relname) "
                "FROM parse_ident(%s), to_regclass(%s) AS r "
                "JOIN pg_class AS c ON c.oid = r JOIN pg_namespace AS n ON n.oid = c.relnamespace",
                (name, name),
            )
            row = cur.fetchone()
    except psycopg.Error as exc:
        raise errors.InvalidName(f"invalid table name {name!r}: {exc.diag.message_primary}") from exc
    if row is None:
        raise errors.NoSuchTable(f"table {name} does not exist")
    return int(row[0]), row[1]


# Every audited table with each trigger attach() gives it, and that trigger's
# state. Names and kinds come from pg_class, never from copies; a table
# dropped since attach shows as such, with its triggers missing. A capture
# function is current when its body is what attach would generate now: it is
# not after ALTER TABLE (it still captures, but compares columns generically).
_TRACKED = """
SELECT t.relid,
       coalesce(format('%I.%I', n.nspname, c.relname), 'dropped table ' || t.relid),
       t.id_columns, t.id_source, t.capture, coalesce(c.relkind = 'p', false),
       c.oid IS NOT NULL AND f.prosrc IS NOT DISTINCT FROM {schema}.capture_source(t.relid::regclass),
       t.exclude, t.redact, t.on_change, t.require_actor,
       format('%I.%I', mn.nspname, m.relname), x.name, g.tgenabled
FROM {schema}.tables AS t
LEFT JOIN pg_class AS c ON c.oid = t.relid
LEFT JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_proc AS f ON f.proname = 'capture_' || t.relid
    AND f.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = {name})
LEFT JOIN LATERAL (
    SELECT t.relid AS member, unnest(CASE WHEN t.capture = 'statement'
        THEN ARRAY['auditsql_capture_insert', 'auditsql_capture_update',
                   'auditsql_capture_delete', 'auditsql_capture_truncate']
        ELSE ARRAY['auditsql_capture_row', 'auditsql_capture_truncate'] END) AS name
    UNION ALL
    SELECT p.relid, 'auditsql_capture_truncate'
    FROM pg_partition_tree(t.relid) AS p
    WHERE p.isleaf AND p.relid <> t.relid
) AS x ON true
LEFT JOIN pg_class AS m ON m.oid = x.member
LEFT JOIN pg_namespace AS mn ON mn.oid = m.relnamespace
LEFT JOIN pg_trigger AS g ON g.tgrelid = x.member AND g.tgname = x.name
ORDER BY 2, x.member = t.relid DESC, 12, x.name
"""


def tracked_tables(cur: psycopg.Cursor, schema: str) -> list[TrackedTable]:
    """Every table attach() recorded, with the state of its audit triggers."""
    cur.execute(sql.SQL(_TRACKED).format(schema=sql.Identifier(schema), name=sql.Literal(schema)))
    tables: dict[int, TrackedTable] = {}
    for (relid, name, columns, source, capture, partitioned, current,
         exclude, redact, on_change, strict, member, trigger, enabled) in cur.fetchall():
        table = tables.setdefault(
            int(relid),
            TrackedTable(int(relid), name, list(columns), source, capture, partitioned, current,
                         list(exclude), list(redact), dict(on_change), bool(strict)),
        )
        if isinstance(enabled, bytes):
            enabled = enabled.decode()
        state = _ENABLED.get(enabled or "", "missing")
        table.triggers.append(TriggerState(member or name, trigger or "capture", state))
    return list(tables.values())
