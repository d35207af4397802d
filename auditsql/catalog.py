"""Read-only catalog queries: what is installed, what is tracked, and in
which state its triggers are. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from auditsql import errors
from auditsql.render import Settings, render

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


@contextmanager
def _catalog_query(cur: psycopg.Cursor) -> Iterator[None]:
    """A savepoint, rolled back, with JIT compilation off: the catalog
    queries here are small, but their set-returning functions make the
    planner expect thousands of rows, and compiling would take longer than
    running them."""
    with cur.connection.transaction(force_rollback=True):
        cur.execute("SET LOCAL jit = off")
        yield


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


# Every audited table (t), each with whether its capture function is
# current: its body is what attach would generate now. It is not after ALTER
# TABLE (it still captures, but compares columns generically). Asked once per
# table: capture_source() builds the whole body.
_TABLES = """
WITH t AS MATERIALIZED (
    SELECT t.*,
           CASE WHEN c.oid IS NOT NULL
                THEN f.prosrc IS NOT DISTINCT FROM {schema}.capture_source(t.relid::regclass)
                ELSE false END AS current
    FROM {schema}.tables AS t
    LEFT JOIN pg_class AS c ON c.oid = t.relid
    LEFT JOIN pg_proc AS f ON f.proname = 'capture_' || t.relid
        AND f.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = {literal})
)
"""

# The audited tables (t, with its pg_class row c and namespace n), one row
# per trigger attach() gives each (x: member and name): the table itself (by
# its capture mode), and every leaf partition of a partitioned table for
# TRUNCATE; with the member's pg_class row m and namespace mn and the
# trigger's own row g where they exist. Shared by status and verify, after
# _TABLES; {schema} and {literal} name the audit schema.
_TABLE_TRIGGERS = """
FROM t
LEFT JOIN pg_class AS c ON c.oid = t.relid
LEFT JOIN pg_namespace AS n ON n.oid = c.relnamespace
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
"""

# Every audited table with each trigger attach() gives it, and that trigger's
# state. Names and kinds come from pg_class, never from copies; a table
# dropped since attach shows as such, with its triggers missing.
_TRACKED = _TABLES + """
SELECT t.relid,
       CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname)
            ELSE 'dropped table ' || t.relid END,
       t.id_columns, t.id_source, t.capture, coalesce(c.relkind = 'p', false),
       t.current, t.exclude, t.redact, t.on_change, t.require_actor,
       CASE WHEN m.oid IS NOT NULL THEN format('%I.%I', mn.nspname, m.relname) END,
       x.name, g.tgenabled""" + _TABLE_TRIGGERS + """ORDER BY 2, x.member = t.relid DESC, 12, x.name
"""


def tracked_tables(cur: psycopg.Cursor, schema: str) -> list[TrackedTable]:
    """Every table attach() recorded, with the state of its audit triggers."""
    with _catalog_query(cur):
        cur.execute(sql.SQL(_TRACKED).format(schema=sql.Identifier(schema),
                                             literal=sql.Literal(schema)))
        rows = cur.fetchall()
    tables: dict[int, TrackedTable] = {}
    for (relid, name, columns, source, capture, partitioned, current,
         exclude, redact, on_change, strict, member, trigger, enabled) in rows:
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


# --------------------------------------------------------------------------
# The installation and the objects it made
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Installation:
    """The newest installation row: the version and the settings it used."""

    version: str
    settings: Settings
    event_trigger: bool  # the event triggers guard this installation


def installation(cur: psycopg.Cursor, schema: str) -> Installation:
    """The installed version and settings, or NotInstalled / PermissionDenied."""
    require_installed(cur, schema)
    cur.execute(
        sql.SQL(
            "SELECT version, settings FROM {}.installation "
            "ORDER BY installed_at DESC, ctid DESC LIMIT 1"
        ).format(sql.Identifier(schema))
    )
    row = cur.fetchone()
    assert row is not None
    version, recorded = row
    recorded = recorded or {}
    defaults = Settings(schema=schema)
    settings = Settings(
        schema=schema,
        owner=str(recorded.get("owner") or defaults.owner),
        reader=str(recorded.get("reader") or defaults.reader),
        writer=str(recorded.get("writer") or defaults.writer),
        admin=str(recorded.get("admin") or defaults.admin),
    )
    return Installation(str(version), settings, bool(recorded.get("event_trigger", False)))


def is_superuser(cur: psycopg.Cursor) -> bool:
    """Whether the connected role (current_user) is a superuser."""
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class CatalogObject:
    """One object auditsql may have created, as sql/fingerprint/catalog.sql reads it."""

    classid: str
    objid: int
    kind: str
    schema_name: str | None
    name: str
    table_name: str | None
    identity: str
    owner: str
    implicit: bool
    enabled: str | None
    function_schema: str | None
    security_definer: bool | None
    config: tuple[str, ...]
    body_digest: str | None
    digest: str
    comment: str | None
    stamped_version: str | None
    stamped_digest: str | None
    stamped_source: str | None

    @property
    def intact(self) -> bool:
        """Unchanged since it was stamped."""
        return self.stamped_digest is not None and self.stamped_digest == self.digest


def catalog_objects(cur: psycopg.Cursor, schema: str) -> list[CatalogObject]:
    """Every object auditsql may have created in ``schema``, with its fingerprint.

    Runs the same query the install script stamps with, rendered here rather
    than called through the installed function, in a savepoint that is
    rolled back so that its pinned settings do not outlive it.
    """
    settings = Settings(schema=schema)  # the query needs the schema only
    with cur.connection.transaction(force_rollback=True):
        version = cur.connection.info.server_version
        cur.execute(render("fingerprint/settings.sql", settings, version))
        cur.execute(render("fingerprint/query.sql", settings, version))
        rows = cur.fetchall()
    objects = []
    for row in rows:
        (classid, objid, kind, schema_name, name, table_name, identity, _target, owner, implicit,
         enabled, function_schema, security_definer, config, body_digest, digest, _description,
         comment, stamped_version, stamped_digest, stamped_source) = row
        objects.append(CatalogObject(
            str(classid), int(objid), kind, schema_name, name, table_name, identity, owner,
            bool(implicit), _text(enabled), function_schema, security_definer,
            tuple(config or ()), body_digest, digest, comment, stamped_version, stamped_digest,
            stamped_source,
        ))
    return objects


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)


# --------------------------------------------------------------------------
# Capture triggers, for verify and upgrade
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureTrigger:
    """One trigger attach() gives a table, as the catalog has it."""

    table: str  # the table or partition it belongs on
    name: str
    oid: int | None  # None: missing
    enabled: str | None
    audit_function: bool  # calls a function of the audit schema
    clones_not_always: tuple[str, ...]  # clones on partitions not ENABLE ALWAYS


@dataclass(frozen=True)
class CaptureTable:
    """An audited table and its capture triggers."""

    relid: int
    entity_type: str
    exists: bool
    id_columns: list[str]
    id_source: str
    triggers: list[CaptureTrigger]
    capture_current: bool  # its capture function is what attach would make now


_CAPTURE = _TABLES + """
SELECT t.relid,
       CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname)
            ELSE 'dropped table ' || t.relid END,
       c.oid IS NOT NULL, t.id_columns, t.id_source, t.current,
       CASE WHEN m.oid IS NOT NULL THEN format('%I.%I', mn.nspname, m.relname) END,
       x.name, g.oid, g.tgenabled,
       coalesce(fp.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = {literal}), false),
       ARRAY(SELECT format('%I on %s', k.tgname, k.tgrelid::regclass)
             FROM pg_partition_tree(x.member) AS p
             JOIN pg_trigger AS k ON k.tgrelid = p.relid
             WHERE k.tgname = x.name AND k.tgparentid <> 0 AND k.tgenabled <> 'A'
             ORDER BY 1)""" + _TABLE_TRIGGERS + """LEFT JOIN pg_proc AS fp ON fp.oid = g.tgfoid
ORDER BY 2, x.member = t.relid DESC, 7, x.name
"""


def capture_tables(cur: psycopg.Cursor, schema: str) -> list[CaptureTable]:
    """Every audited table with the catalog's view of each capture trigger."""
    with _catalog_query(cur):
        cur.execute(sql.SQL(_CAPTURE).format(schema=sql.Identifier(schema),
                                             literal=sql.Literal(schema)))
        rows = cur.fetchall()
    tables: dict[int, CaptureTable] = {}
    for (relid, entity, exists, columns, source, current, member, name, oid, enabled,
         audit_function, clones) in rows:
        table = tables.setdefault(
            int(relid),
            CaptureTable(int(relid), entity, bool(exists), list(columns), source, [], bool(current)),
        )
        if exists:
            table.triggers.append(CaptureTrigger(
                member, name, None if oid is None else int(oid), _text(enabled),
                bool(audit_function), tuple(clones or ()),
            ))
    return list(tables.values())


def capture_problems(table: CaptureTable, objects: dict[int, CatalogObject],
                     version: str) -> list[str]:
    """What is wrong with a table's capture triggers: missing, calling
    another function, not ENABLE ALWAYS (on the table or a partition),
    changed since attach created them, or created by another version; and a
    capture function that ALTER TABLE left out of date.
    ``objects`` maps trigger oids to their catalog objects."""
    if not table.exists:
        return []
    problems = []
    if not table.capture_current:
        problems.append(f"{table.entity_type}: capture function out of date "
                        "(the table changed since attach)")
    for trigger in table.triggers:
        label = f"{trigger.name} on {trigger.table}"
        if trigger.oid is None:
            problems.append(f"{label}: missing")
            continue
        if not trigger.audit_function:
            problems.append(f"{label}: calls a function outside the audit schema")
        if trigger.enabled != "A":
            problems.append(f"{label}: {_ENABLED.get(trigger.enabled or '', 'unknown')}")
        problems += [f"{clone}: not enabled always" for clone in trigger.clones_not_always]
        found = objects.get(trigger.oid)
        if found is None or found.stamped_digest is None:
            problems.append(f"{label}: no fingerprint")
        elif not found.intact:
            problems.append(f"{label}: changed since attach")
        elif found.stamped_version != version:
            problems.append(f"{label}: created by auditsql {found.stamped_version}")
    return problems


# --------------------------------------------------------------------------
# Roles, ownership, privileges and user tables, for verify
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A role's attributes that matter to verify."""

    name: str
    login: bool
    superuser: bool


def roles(cur: psycopg.Cursor, names: list[str]) -> dict[str, Role]:
    """The roles among ``names`` that exist."""
    cur.execute(
        "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = ANY (%s)", (names,)
    )
    return {name: Role(name, bool(login), bool(su)) for name, login, su in cur.fetchall()}


def schema_owner(cur: psycopg.Cursor, schema: str) -> str | None:
    """The owner of ``schema``, or None if it does not exist."""
    cur.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", (schema,))
    row = cur.fetchone()
    return row[0] if row else None


def owned_elsewhere(cur: psycopg.Cursor, schema: str, owner: str) -> list[str]:
    """Functions, relations and schemas owned by ``owner`` outside ``schema``."""
    cur.execute(
        """
        SELECT 'function ' || p.oid::regprocedure FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.proowner = %(owner)s::regrole AND n.nspname <> %(schema)s
        UNION ALL
        SELECT 'relation ' || c.oid::regclass FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relowner = %(owner)s::regrole AND n.nspname <> %(schema)s
          AND n.nspname NOT LIKE 'pg\\_toast%%'
        UNION ALL
        SELECT 'schema ' || quote_ident(n.nspname) FROM pg_namespace AS n
        WHERE n.nspowner = %(owner)s::regrole AND n.nspname <> %(schema)s
        ORDER BY 1
        """,
        {"owner": owner, "schema": schema},
    )
    return [r[0] for r in cur.fetchall()]


WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER")


def writer_grants(cur: psycopg.Cursor, schema: str, owner: str) -> list[str]:
    """Privileges that let a role other than ``owner`` write audit tables
    (INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER) or set their sequences
    (UPDATE), as ``UPDATE on audit.events to app``."""
    cur.execute(
        """
        SELECT DISTINCT format('%%s on %%s to %%s', a.privilege_type, c.oid::regclass,
                               CASE a.grantee WHEN 0 THEN 'PUBLIC'
                                              ELSE a.grantee::regrole::text END)
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(
            CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) AS a
        WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'S')
          AND a.grantee IS DISTINCT FROM (SELECT r.oid FROM pg_roles AS r
                                          WHERE r.rolname = %(owner)s)
          AND CASE WHEN c.relkind = 'S' THEN a.privilege_type = 'UPDATE'
                   ELSE a.privilege_type = ANY (%(privileges)s) END
        ORDER BY 1
        """,
        {"schema": schema, "owner": owner, "privileges": list(WRITE_PRIVILEGES)},
    )
    return [r[0] for r in cur.fetchall()]


def public_privileges(cur: psycopg.Cursor, schemas: list[str]) -> list[tuple[str, str, str, str]]:
    """(kind, name, identity, privilege) of each privilege PUBLIC holds on
    these schemas or an object in them (default privileges included)."""
    cur.execute(
        """
        SELECT 'schema', n.nspname::text, quote_ident(n.nspname), a.privilege_type
        FROM pg_namespace AS n
        CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
        WHERE n.nspname = ANY (%(schemas)s) AND a.grantee = 0
        UNION ALL
        SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, c.relname::text,
               c.oid::regclass::text, a.privilege_type
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(
            CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) AS a
        WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
          AND a.grantee = 0
        UNION ALL
        SELECT 'function', p.proname::text, p.oid::regprocedure::text, a.privilege_type
        FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
        WHERE n.nspname = ANY (%(schemas)s) AND a.grantee = 0
        ORDER BY 3, 4
        """,
        {"schemas": schemas},
    )
    return [tuple(r) for r in cur.fetchall()]  # type: ignore[misc]


def guard_problems(cur: psycopg.Cursor, schema: str) -> list[str]:
    """Tables of the log (``events`` and every partition) missing an enabled
    always guard: a statement-level BEFORE UPDATE OR DELETE OR TRUNCATE
    trigger and a row-level BEFORE UPDATE OR DELETE trigger calling guard()."""
    with _catalog_query(cur):
        return _guard_problems(cur, schema)


def _guard_problems(cur: psycopg.Cursor, schema: str) -> list[str]:
    cur.execute(
        """
        WITH guard AS (
            SELECT p.oid FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
            WHERE n.nspname = %(schema)s AND p.proname = 'guard'
        ), members AS (
            SELECT r.relid
            FROM pg_partition_tree(to_regclass(format('%%I.events', %(schema)s::text))) AS r
        ), needed(kind, row_level, events) AS (
            VALUES ('statement', 0, 8 | 16 | 32), ('row', 1, 8 | 16)
        )
        SELECT format('%%s: no %%s-level guard', m.relid::regclass, needed.kind)
        FROM members AS m CROSS JOIN needed
        WHERE NOT EXISTS (
            SELECT FROM pg_trigger AS t
            WHERE t.tgrelid = m.relid AND t.tgfoid IN (SELECT oid FROM guard)
              AND t.tgenabled = 'A'
              AND (t.tgtype::int & 1) = needed.row_level
              AND (t.tgtype::int & 2) = 2
              AND (t.tgtype::int & needed.events) = needed.events)
        UNION ALL
        SELECT format('%%s does not exist', format('%%I.events', %(schema)s::text))
        WHERE to_regclass(format('%%I.events', %(schema)s::text)) IS NULL
        ORDER BY 1
        """,
        {"schema": schema},
    )
    return [r[0] for r in cur.fetchall()]


def user_tables(cur: psycopg.Cursor, schema: str) -> list[tuple[int, str, str, str]]:
    """(oid, qualified name, schema, name) of every table that could be
    audited: ordinary and partitioned tables that are not partitions, not
    temporary, not part of an extension, outside the system schemas and the
    audit schema."""
    cur.execute(
        """
        SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), n.nspname::text, c.relname::text
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', %(schema)s)
          AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
          AND NOT EXISTS (SELECT FROM pg_depend AS d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype = 'e')
        ORDER BY 2
        """,
        {"schema": schema},
    )
    return [(int(oid), q, s, n) for oid, q, s, n in cur.fetchall()]
