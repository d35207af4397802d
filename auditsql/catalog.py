"""Read-only catalog queries: what is installed, what is tracked, and in
which state its triggers are. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from auditsql import errors

TRIGGER_PREFIX = "auditsql_"
CAPTURE_TRIGGERS = (
    "auditsql_capture_insert",
    "auditsql_capture_update",
    "auditsql_capture_delete",
    "auditsql_capture_truncate",
)
ROW_TRIGGER = "auditsql_capture_row"
TRUNCATE_TRIGGER = "auditsql_capture_truncate"

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
    partitioned: bool
    triggers: list[TriggerState] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return bool(self.triggers) and all(t.state == "always" for t in self.triggers)


def installed_version(cur: psycopg.Cursor, schema: str) -> str | None:
    """The installed auditsql version in ``schema``, or None."""
    cur.execute(
        "SELECT to_regclass(format('%%I.installation', %s::text)) IS NOT NULL", (schema,)
    )
    row = cur.fetchone()
    if not row or not row[0]:
        return None
    cur.execute(
        sql.SQL(
            "SELECT version FROM {}.installation ORDER BY installed_at DESC, ctid DESC LIMIT 1"
        ).format(sql.Identifier(schema))
    )
    found = cur.fetchone()
    return found[0] if found else None


def require_installed(cur: psycopg.Cursor, schema: str) -> str:
    """The installed version, or NotInstalled with what to do about it."""
    cur.execute(
        "SELECT has_table_privilege(to_regclass(format('%%I.installation', %s::text)), 'SELECT')",
        (schema,),
    )
    readable = cur.fetchone()
    if readable and readable[0] is False:
        raise errors.PermissionDenied(
            f"role {cur.connection.info.user} may not read the audit schema {schema!r}; "
            "connect as a member of its owner or reader role"
        )
    version = installed_version(cur, schema)
    if version is None:
        raise errors.NotInstalled(
            f"auditsql is not installed in schema {schema!r} of this database; "
            "run `auditsql install` first"
        )
    return version


def resolve_table(cur: psycopg.Cursor, name: str) -> tuple[int, str]:
    """Resolve a table name as PostgreSQL would (``orders``, ``public.orders``,
    ``"My Table"``) to its oid and its schema-qualified, quoted name."""
    if not name.strip() or "\x00" in name:
        raise errors.InvalidName(f"invalid table name: {name!r}")
    try:
        with cur.connection.transaction():
            # parse_ident rejects bad syntax on every version; to_regclass
            # returns NULL for it on PostgreSQL 16+.
            cur.execute("SELECT parse_ident(%s), to_regclass(%s)::oid", (name, name))
            row = cur.fetchone()
    except psycopg.Error as exc:
        raise errors.InvalidName(f"invalid table name {name!r}: {exc.diag.message_primary}") from exc
    if not row or row[1] is None:
        raise errors.NoSuchTable(f"table {name} does not exist")
    oid = int(row[1])
    cur.execute(
        "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
        (oid,),
    )
    qualified = cur.fetchone()
    assert qualified is not None
    return oid, qualified[0]


def tracked_tables(cur: psycopg.Cursor, schema: str) -> list[TrackedTable]:
    """Every table attach() recorded, with the state of its audit triggers."""
    cur.execute(
        sql.SQL(
            "SELECT relid, entity_type, id_columns, id_source, partitioned "
            "FROM {}.tables ORDER BY entity_type"
        ).format(sql.Identifier(schema))
    )
    tables = [TrackedTable(int(r[0]), r[1], list(r[2]), r[3], r[4]) for r in cur.fetchall()]
    for table in tables:
        table.triggers.extend(_trigger_states(cur, table))
    return tables


def _trigger_states(cur: psycopg.Cursor, table: TrackedTable) -> list[TriggerState]:
    """Expected triggers of a tracked table, each with its catalog state."""
    if table.partitioned:
        cur.execute(
            "SELECT %s::oid, %s UNION ALL "
            "SELECT relid, %s FROM pg_partition_tree(%s::oid) WHERE isleaf",
            (table.relid, ROW_TRIGGER, TRUNCATE_TRIGGER, table.relid),
        )
        expected = [(int(r[0]), r[1]) for r in cur.fetchall()]
    else:
        expected = [(table.relid, name) for name in CAPTURE_TRIGGERS]
    states = []
    for relid, name in expected:
        cur.execute(
            "SELECT format('%%I.%%I', n.nspname, c.relname), t.tgenabled FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = %s "
            "WHERE c.oid = %s",
            (name, relid),
        )
        row = cur.fetchone()
        if row is None:
            states.append(TriggerState(table.entity_type, name, "missing"))
            continue
        enabled = row[1].decode() if isinstance(row[1], bytes) else row[1]
        states.append(TriggerState(row[0], name, _ENABLED.get(enabled or "", "missing")))
    return states
