"""Read-only catalog queries: what is installed, what is tracked, and in
which state its triggers are. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from auditsql import errors
from auditsql.render import Settings, guard_schema_name, render


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


# --------------------------------------------------------------------------
# Audited tables: one model, and one list of what is wrong with each
# --------------------------------------------------------------------------

FAIL = "fail"
WARN = "warn"


@dataclass(frozen=True)
class TriggerState:
    """One capture trigger a table needs, and what the catalog says of it."""

    table: str  # the table or partition it belongs on
    name: str
    state: str  # always | origin | replica | disabled | missing | changed


@dataclass(frozen=True)
class Problem:
    """Something wrong with an audited table: ``fail`` when writes may go
    unrecorded or be recorded wrongly, ``warn`` when capture is complete
    but not as attach would make it now."""

    severity: str  # fail | warn
    kind: str  # triggers | function | columns | id columns | dropped
    message: str


_TRIGGER_STATES = {"origin": "enabled without ALWAYS", "replica": "enabled for replica only",
                   "disabled": "disabled", "missing": "missing",
                   "changed": "not as attach makes it"}


@dataclass(frozen=True)
class AuditedTable:
    """An audited table as sql/queries/audited_tables.sql reads it."""

    relid: int
    entity_type: str
    exists: bool
    partitioned: bool
    id_columns: list[str]
    id_source: str  # primary key | explicit
    id_trusted: bool  # explicit id columns accepted without a unique index
    id_unique: bool
    capture: str  # row | statement
    exclude: list[str] = field(default_factory=list)
    redact: list[str] = field(default_factory=list)
    on_change: dict[str, str] = field(default_factory=dict)
    require_actor: bool = False
    capture_current: bool = True  # its capture function is what attach makes now
    missing_columns: list[str] = field(default_factory=list)
    triggers: list[TriggerState] = field(default_factory=list)
    clones_not_always: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def problems(self) -> list[Problem]:
        """Everything wrong with the table's capture, worst first."""
        if not self.exists:
            return [Problem(WARN, "dropped", f"{self.entity_type}: dropped while audited")]
        found: list[Problem] = []
        for trigger in self.triggers:
            if trigger.state != "always":
                found.append(Problem(FAIL, "triggers", f"{trigger.name} on {trigger.table}: "
                                     f"{_TRIGGER_STATES.get(trigger.state, trigger.state)}"))
        found += [Problem(FAIL, "triggers", f"{clone}: not enabled always")
                  for clone in self.clones_not_always]
        found += [Problem(FAIL, "triggers", f"{other}: calls the capture function of "
                          f"{self.entity_type} but is not one attach makes")
                  for other in self.unexpected]
        found += [Problem(FAIL, "triggers", f"capture triggers of {table} were dropped or created "
                          "again since they were recorded: writes in between may be missing")
                  for table in self.lost]
        for column in self.missing_columns:
            policy = column.split(" ")[0]
            severity = WARN if policy == "exclude" else FAIL
            found.append(Problem(severity, "columns",
                                 f"{self.entity_type}: {column} is no longer a column of the "
                                 "table (renamed or dropped)"))
        if self.id_source == "explicit" and not self.id_unique:
            found.append(Problem(WARN, "id columns",
                                 f"{self.entity_type}: id columns {', '.join(self.id_columns)} are "
                                 "not backed by a unique index over NOT NULL columns"
                                 + (" (trusted at attach)" if self.id_trusted else "")))
        if not self.capture_current:
            found.append(Problem(WARN, "function",
                                 f"{self.entity_type}: capture function out of date (the table "
                                 "changed since attach); capture is complete, only slower"))
        return sorted(found, key=lambda p: p.severity != FAIL)

    @property
    def healthy(self) -> bool:
        return self.exists and not self.problems()

    @property
    def needs_attach(self) -> bool:
        """Attaching again would mend something (upgrade does)."""
        return self.exists and any(p.kind in ("triggers", "function") for p in self.problems())


def audited_tables(cur: psycopg.Cursor, schema: str) -> list[AuditedTable]:
    """Every table attach() recorded, as the catalog has it now."""
    settings = Settings(schema=schema)
    version = cur.connection.info.server_version
    with cur.connection.transaction(force_rollback=True):
        cur.execute(render("fingerprint/settings.sql", settings, version))
        cur.execute(render("queries/audited_tables.sql", settings, version))
        rows = cur.fetchall()
    tables = []
    for (relid, entity_type, present, partitioned, id_columns, id_source, id_trusted, id_unique,
         capture, exclude, redact, on_change, require_actor, current, missing, triggers, clones,
         unexpected, lost) in rows:
        tables.append(AuditedTable(
            int(relid), entity_type, bool(present), bool(partitioned), list(id_columns),
            id_source, bool(id_trusted), bool(id_unique), capture, list(exclude), list(redact),
            dict(on_change), bool(require_actor), bool(current), list(missing),
            [TriggerState(t["table"], t["name"], t["state"]) for t in triggers],
            list(clones), list(unexpected), list(lost)))
    return tables


# --------------------------------------------------------------------------
# The installation and the objects it made
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Installation:
    """The newest installation row: the version and the settings it used."""

    version: str
    settings: Settings
    event_trigger: bool  # the event triggers guard this installation
    created_roles: list[str] = field(default_factory=list)  # roles install created


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
        operator=str(recorded.get("operator") or defaults.operator),
    )
    return Installation(str(version), settings, bool(recorded.get("event_trigger", False)),
                        [str(r) for r in recorded.get("created_roles") or []])


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


def fingerprinted_objects(cur: psycopg.Cursor, schema: str) -> list[CatalogObject]:
    """What auditsql made in its schemas, and the triggers calling its
    functions, that carry a fingerprint: all but the capture triggers on
    audited tables, which attach cannot comment on (they belong to the
    table's owner) and which are judged against the record attach keeps
    (AuditedTable)."""
    guard = guard_schema_name(schema)
    return [o for o in catalog_objects(cur, schema)
            if not (o.kind == "trigger" and o.name.startswith("auditsql_capture_")
                    and o.schema_name not in (schema, guard))]


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)


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
LOG_REWRITES = ("UPDATE", "DELETE", "TRUNCATE")

# Every privilege held on a relation of the audit schema, the relation's own
# or on one of its columns, one row each: (relation, relkind, whether it is
# the log or a partition of it, grantee or NULL for PUBLIC, privilege,
# column or NULL). Owners hold what acldefault() gives them unless revoked.
_PRIVILEGES = """
WITH rel AS (
    SELECT c.oid, c.relkind, c.relowner, c.relacl,
           c.oid IN (SELECT r.relid FROM pg_partition_tree(
                         to_regclass(format('%%I.events', %(schema)s::text))) AS r) AS log
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
)
SELECT r.oid::regclass::text, r.relkind::text, r.log,
       CASE a.grantee WHEN 0 THEN NULL ELSE a.grantee::regrole::text END, a.privilege_type,
       NULL::text
FROM rel AS r
CROSS JOIN LATERAL aclexplode(coalesce(r.relacl, acldefault(
    CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END::"char", r.relowner))) AS a
UNION ALL
SELECT r.oid::regclass::text, r.relkind::text, r.log,
       CASE a.grantee WHEN 0 THEN NULL ELSE a.grantee::regrole::text END, a.privilege_type,
       t.attname::text
FROM rel AS r
JOIN pg_attribute AS t ON t.attrelid = r.oid AND t.attnum > 0 AND t.attacl IS NOT NULL
CROSS JOIN LATERAL aclexplode(t.attacl) AS a
ORDER BY 1, 4 NULLS FIRST, 5, 6 NULLS FIRST
"""


@dataclass(frozen=True)
class Privilege:
    """A privilege held on a relation of the audit schema (or one of its
    columns)."""

    relation: str
    kind: str  # relkind: r, p, S, v, m, f
    log: bool  # the log or one of its partitions
    grantee: str | None  # None: PUBLIC
    privilege: str
    column: str | None

    def __str__(self) -> str:
        column = f" ({self.column})" if self.column else ""
        return f"{self.privilege}{column} on {self.relation} to {self.grantee or 'PUBLIC'}"


def privileges(cur: psycopg.Cursor, schema: str) -> list[Privilege]:
    """Every privilege held on the relations of the audit schema."""
    cur.execute(_PRIVILEGES, {"schema": schema})
    return [Privilege(*row) for row in cur.fetchall()]


def writer_grants(found: list[Privilege], owner: str) -> list[str]:
    """Privileges that let a role write the audit tables: INSERT, UPDATE,
    DELETE, TRUNCATE or TRIGGER held by any role but the owner (UPDATE on a
    sequence, which sets it), and UPDATE, DELETE or TRUNCATE on the log and
    its partitions held by anyone, the owner included."""
    bad = []
    for p in found:
        if p.grantee == owner:
            if p.log and p.privilege in LOG_REWRITES:
                bad.append(str(p))
        elif p.kind == "S":
            if p.privilege == "UPDATE":
                bad.append(str(p))
        elif p.privilege in WRITE_PRIVILEGES:
            bad.append(str(p))
    return bad


def reader_grants(found: list[Privilege], allowed: dict[str, set[str]]) -> list[str]:
    """SELECT on a relation of the audit schema held by a role that is
    neither its owner nor given it by install (``allowed``: role -> the
    relations it may read, ``*`` for all); members of those roles read
    through them and hold no grant of their own."""
    bad = []
    for p in found:
        if p.privilege != "SELECT":
            continue
        permitted = allowed.get(p.grantee or "", set())
        if "*" not in permitted and p.relation.split(".", 1)[-1] not in permitted:
            bad.append(str(p))
    return bad


@dataclass(frozen=True)
class Member:
    """A role that can log in and is a member of the owner or admin role."""

    name: str
    owner: bool
    admin: bool


def members(cur: psycopg.Cursor, owner: str, admin: str) -> tuple[list[Member], list[str]]:
    """The login roles that are members (directly or not) of the owner role
    or the admin role, and the superusers who can log in."""
    cur.execute(
        """
        SELECT r.rolname::text,
               coalesce(pg_has_role(r.oid, o.oid, 'MEMBER'), false),
               coalesce(pg_has_role(r.oid, a.oid, 'MEMBER'), false),
               r.rolsuper
        FROM pg_roles AS r
        LEFT JOIN pg_roles AS o ON o.rolname = %(owner)s
        LEFT JOIN pg_roles AS a ON a.rolname = %(admin)s
        WHERE r.rolcanlogin
        ORDER BY 1
        """,
        {"owner": owner, "admin": admin},
    )
    found, superusers = [], []
    for name, is_owner, is_admin, superuser in cur.fetchall():
        if superuser:
            superusers.append(name)
        elif is_owner or is_admin:
            found.append(Member(name, bool(is_owner), bool(is_admin)))
    return found, superusers


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
