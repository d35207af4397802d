"""Install auditsql and attach or detach tables. Each public function runs
in one transaction: it applies completely or not at all (install and
upgrade try it again when they gave up waiting for a lock)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.types.json import Jsonb

from auditsql import __version__, catalog, db, errors, retention, upgrades
from auditsql.fingerprint import INSTALLED, MISSING, OUTDATED, ObjectState, classify
from auditsql.render import (
    Settings,
    event_actions,
    install_definitions,
    install_sql,
    uninstall_sql,
)


def install(
    conn: psycopg.Connection,
    settings: Settings,
    retention_policy: str | None = None,
    *,
    admin_roles: list[str] | None = None,
    require_actor: bool | None = None,
) -> str:
    """Install (or re-install) auditsql; returns the installed version.

    A superuser's install also creates the event triggers that refuse DDL
    weakening auditing; another role's cannot. With *retention_policy*
    (financial, medical, saas or an interval) the retention policy is set in
    the same transaction, so a bad policy leaves nothing behind.
    ``admin_roles`` and ``require_actor`` change the installation settings (see
    ``audit.configure``); None keeps them.
    """
    def attempt() -> str:
        with db.transaction(conn) as cur:
            installed = catalog.installed_version(cur, settings.schema)
            if installed is not None:
                upgrades.path(installed)
            cur.execute(install_script(cur, settings).encode())
            version = catalog.require_installed(cur, settings.schema)
            reattach(cur, settings.schema)
            if retention_policy is not None:
                retention.set_policy_in(cur, settings.schema, retention_policy)
            configure = configure_query(settings, admin_roles, require_actor)
            if configure is not None:
                cur.execute(configure)
            return version

    return _retried(attempt)


T = TypeVar("T")

# How many times install and upgrade try: the install script waits for a
# lock one second at most (sql/install.sql.j2), and gives up rather than
# keep writers queued behind it (sql/setup/lock.sql); the next attempt
# comes after a pause that doubles each time, up to a second.
LOCK_ATTEMPTS = 10
_GAVE_UP = (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected)


def _retried(attempt: Callable[[], T]) -> T:
    """``attempt()``, a whole transaction, run again while it gives up on a
    lock (or is chosen to break a deadlock), LOCK_ATTEMPTS times at most."""
    for number in range(1, LOCK_ATTEMPTS + 1):
        try:
            return attempt()
        except errors.AuditsqlError as exc:
            if not isinstance(exc.__cause__, _GAVE_UP):
                raise
            if number == LOCK_ATTEMPTS:
                raise errors.DatabaseError(
                    f"gave up after {LOCK_ATTEMPTS} attempts: each time, another transaction "
                    "held a lock it needs (on an audited table or the log) for more than a "
                    f"second; run it again when that transaction is done ({exc})") from exc
        time.sleep(min(0.05 * 2 ** number, 1.0))
    raise AssertionError("unreachable")


def set_retention_sql(settings: Settings, policy: str) -> str:
    """The statement that sets the retention policy, for ``install --dry-run``."""
    retention.validate_policy_text(policy)
    return sql.SQL("SELECT {}.set_retention({});\n").format(
        sql.Identifier(settings.schema), sql.Literal(policy)
    ).as_string(None)


def configure_query(
    settings: Settings, admin_roles: list[str] | None, require_actor: bool | None
) -> sql.Composed | None:
    """``SELECT audit.configure(...)`` for the given changes, or None for none."""
    if admin_roles is None and require_actor is None:
        return None
    return sql.SQL("SELECT {}.configure({}::text[], {}::boolean);\n").format(
        sql.Identifier(settings.schema), sql.Literal(admin_roles), sql.Literal(require_actor))


CAPTURE_MODES = ("row", "statement")


@dataclass(frozen=True)
class Policies:
    """Column policies for attach (see ``audit.attach``). None keeps the
    table's current value; an empty value clears it."""

    exclude: list[str] | None = None
    redact: list[str] | None = None
    on_change: dict[str, str] | None = None
    require_actor: bool | None = None
    trust_id_columns: bool | None = None


@dataclass(frozen=True)
class Target:
    """What an install script is rendered for: a server version, and
    whether the role that runs it is a superuser (only a superuser's
    install creates the event triggers)."""

    server_version_num: int
    event_trigger: bool


def target(cur: psycopg.Cursor) -> Target:
    """The connected server and role, as an install script's target."""
    return Target(cur.connection.info.server_version, catalog.is_superuser(cur))


def install_script(cur: psycopg.Cursor, settings: Settings) -> str:
    """The install script for this server and the connected role."""
    found = target(cur)
    return install_sql(settings, found.server_version_num, event_trigger=found.event_trigger)


def dry_run_script(
    settings: Settings,
    to: Target,
    retention_policy: str | None = None,
    *,
    admin_roles: list[str] | None = None,
    require_actor: bool | None = None,
) -> str:
    """What :func:`install` runs, as one transaction to feed to psql: the
    install script for ``to``, then the retention policy and settings
    changes. No database access."""
    script = install_sql(settings, to.server_version_num, event_trigger=to.event_trigger)
    if retention_policy is not None:
        script += set_retention_sql(settings, retention_policy)
    configure = configure_query(settings, admin_roles, require_actor)
    if configure is not None:
        script += configure.as_string(None)
    return f"BEGIN;\n{script}COMMIT;\n"


@dataclass(frozen=True)
class Reattached:
    """An audited table that upgrade attached again, and why: what was
    wrong with its capture (see ``catalog.AuditedTable.problems``)."""

    table: str
    reasons: list[str]


@dataclass(frozen=True)
class ObjectDrift:
    """An object that was not as this version makes it: missing or outdated
    (see ``fingerprint.classify``), with the reason."""

    kind: str
    identity: str
    state: str  # missing | outdated
    reason: str


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did, and what it left as it was."""

    from_version: str
    to_version: str
    reattached: list[Reattached]
    # missing or outdated before the upgrade, as this version makes them after
    restored: list[ObjectDrift]
    # still missing or outdated after it: changed by hand in a way the
    # install script does not undo (see ``auditsql verify``)
    unresolved: list[ObjectDrift]

    @property
    def up_to_date(self) -> bool:
        """Nothing needed doing: the same version, nothing attached again or
        restored, nothing left outdated or missing."""
        return (self.from_version == self.to_version and not self.reattached
                and not self.restored and not self.unresolved)


def upgrade(conn: psycopg.Connection, schema: str) -> Upgrade:
    """Run this version's install script over an existing installation, with
    the settings it was installed with, then attach again every audited
    table whose capture triggers are missing, disabled, changed or made by
    another version. One transaction; refused when nothing is installed.

    The objects are compared with their fingerprints before and after, so
    that the result says what was repaired and what is still amiss.

    The install script applies the upgrade steps from the installed version
    (``auditsql.upgrades``); CannotUpgrade for an installation newer than
    this package, or one no step leads from."""
    def attempt() -> Upgrade:
        with db.transaction(conn) as cur:
            installed = catalog.installation(cur, schema)
            upgrades.path(installed.version)
            to = target(cur)
            script = install_definitions(installed.settings, to.server_version_num,
                                         event_trigger=to.event_trigger)
            before = classify(script, catalog.fingerprinted_objects(cur, schema), __version__)
            cur.execute(install_sql(installed.settings, to.server_version_num,
                                    event_trigger=to.event_trigger).encode())
            reattached = reattach(cur, schema)
            after = classify(script, catalog.fingerprinted_objects(cur, schema), __version__)
            return Upgrade(installed.version, catalog.require_installed(cur, schema),
                           reattached, *_drift(before, after))

    return _retried(attempt)


_AMISS = (MISSING, OUTDATED)


def _drift(before: list[ObjectState],
           after: list[ObjectState]) -> tuple[list[ObjectDrift], list[ObjectDrift]]:
    """(objects amiss before and installed after, objects amiss after), each
    as classify() named it: an object the install script defines by its
    definition, one made at run time (partitions, capture functions) by its
    identity."""
    def key(state: ObjectState) -> object:
        return state.defined if state.defined is not None else (state.kind, state.identity)

    now = {key(s): s for s in after}
    restored = [
        ObjectDrift(s.kind, now[key(s)].identity, s.state, s.reason)
        for s in before
        if s.state in _AMISS and key(s) in now and now[key(s)].state == INSTALLED
    ]
    unresolved = [ObjectDrift(s.kind, s.identity, s.state, s.reason)
                  for s in after if s.state in _AMISS]
    return restored, unresolved


def reattach(cur: psycopg.Cursor, schema: str) -> list[Reattached]:
    """Attach again, with their settings, the tables whose capture attach
    would mend (triggers missing, disabled or changed; a capture function
    out of date or made by another version), and say why."""
    done = []
    for table in catalog.audited_tables(cur, schema):
        if table.needs_attach:
            attach = sql.SQL("SELECT {}.attach(%s::oid::regclass)").format(sql.Identifier(schema))
            cur.execute(attach, (table.relid,))
            done.append(Reattached(table.entity_type, [
                p.message for p in table.problems() if p.kind in ("triggers", "function")]))
    return done


def attach(
    conn: psycopg.Connection,
    tables: list[str],
    settings: Settings,
    id_columns: list[str] | None = None,
    capture: str | None = None,
    policies: Policies | None = None,
) -> Tables:
    """Start auditing ``tables``; returns their qualified names, and the
    warnings the server gave (redaction added to a table with events
    recorded before it, which keep the values in clear).
    ``id_columns`` names the columns that identify a row (None keeps each
    table's, an empty list means its primary key again). ``capture`` is
    ``row`` or ``statement``; None keeps each table's mode (``row`` when new).
    ``policies`` set column policies; each None field keeps the table's."""
    if capture is not None and capture not in CAPTURE_MODES:
        raise errors.InvalidValue(
            f"unknown capture mode {capture!r}: use {' or '.join(CAPTURE_MODES)}"
        )
    p = policies or Policies()
    on_change = None if p.on_change is None else Jsonb(p.on_change)
    return _for_each_table(conn, tables, settings, "attach", id_columns, capture,
                           p.exclude, p.redact, on_change, p.require_actor, p.trust_id_columns)


def detach(conn: psycopg.Connection, tables: list[str], settings: Settings) -> Tables:
    """Stop auditing ``tables``; returns their qualified names."""
    return _for_each_table(conn, tables, settings, "detach")


@dataclass(frozen=True)
class Tables:
    """The tables an attach or detach acted on, and the server's warnings."""

    names: list[str]
    warnings: list[str]


def _for_each_table(
    conn: psycopg.Connection,
    tables: list[str],
    settings: Settings,
    function: str,
    *args: object,
) -> Tables:
    """Call ``audit.<function>(table, *args)`` on each table, in one transaction."""
    placeholders = [sql.SQL("%s::oid::regclass"), *(sql.Placeholder() for _ in args)]
    query = sql.SQL("SELECT {}.{}({})").format(
        sql.Identifier(settings.schema), sql.Identifier(function), sql.SQL(", ").join(placeholders)
    )
    warnings: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        if diag.severity_nonlocalized == "WARNING" and diag.message_primary:
            message = diag.message_primary.removeprefix("auditsql: ")
            warnings.append(f"{message} ({diag.message_hint})" if diag.message_hint else message)

    conn.add_notice_handler(keep)
    try:
        with db.transaction(conn) as cur:
            catalog.require_installed(cur, settings.schema)
            names = []
            for name in tables:
                oid, qualified = catalog.resolve_table(cur, name)
                cur.execute(query, (oid, *args))
                names.append(qualified)
    finally:
        conn.remove_notice_handler(keep)
    return Tables(names, warnings)


def parse_id_columns(value: str | None) -> list[str] | None:
    """Split ``a,b`` into column names; surrounding spaces are ignored."""
    return parse_names(value, "--id-columns")


def parse_names(value: str | None, option: str) -> list[str] | None:
    """Split ``a,b`` into names for ``option``; surrounding spaces are ignored."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",")]
    if not names or any(not n for n in names):
        raise errors.InvalidName(f"invalid {option} {value!r}: expected names like a,b")
    return names


# What audit.action_category accepts (sql/functions/action_category.sql).
ACTION = re.compile(r"[a-z][a-z0-9_]{0,62}")


def check_action(action: str, option: str = "--on-change") -> None:
    """InvalidValue unless a policy may name ``action``: by the rule of
    ``audit.action_category``, 1 to 63 lower-case letters, digits and
    underscores, starting with a letter, and none of the actions auditsql
    writes itself (data changes and events about auditing)."""
    if not ACTION.fullmatch(action):
        raise errors.InvalidValue(
            f"invalid {option} action {action[:80]!r}: use 1 to 63 lower-case letters, "
            "digits and underscores, starting with a letter")
    if action in event_actions("data") + event_actions("system"):
        raise errors.InvalidValue(
            f"{option} action {action!r} is written by auditsql itself; choose another name")


def parse_on_change(values: list[str] | None) -> dict[str, str] | None:
    """``["role=role_changed", ...]`` as {column: action}; each action as
    :func:`check_action` requires."""
    if not values:
        return None
    found: dict[str, str] = {}
    for value in values:
        column, sep, action = value.partition("=")
        column, action = column.strip(), action.strip()
        if not sep or not column or not action:
            raise errors.InvalidValue(
                f"invalid --on-change {value!r}: expected COLUMN=ACTION, such as role=role_changed")
        if column in found:
            raise errors.InvalidValue(f"--on-change names column {column!r} twice")
        check_action(action)
        found[column] = action
    return found


@dataclass(frozen=True)
class Uninstall:
    """What an uninstall did."""

    schema: str
    data_dropped: bool
    tables: list[str]  # tables no longer audited
    dropped_roles: list[str]
    kept_roles: list[str]  # created by install, still used elsewhere
    warnings: list[str]


def uninstall(conn: psycopg.Connection, schema: str, *, drop_data: bool = False) -> Uninstall:
    """Take auditsql out of the database (sql/uninstall.sql.j2), in one
    transaction: the capture of every audited table, the event triggers,
    auditsql's functions and views, and the roles install created; the log
    too with ``drop_data``, else it stays as plain tables owned by the
    connected role, ending with an ``uninstalled`` event."""
    warnings: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        if diag.severity_nonlocalized == "WARNING" and diag.message_primary:
            warnings.append(diag.message_primary.removeprefix("auditsql: "))

    conn.add_notice_handler(keep)
    try:
        with db.transaction(conn) as cur:
            installed = catalog.installation(cur, schema)
            tables = [t.entity_type for t in catalog.audited_tables(cur, schema) if t.exists]
            cur.execute(uninstall_sql(installed.settings, drop_data=drop_data,
                                      created_roles=installed.created_roles).encode())
            cur.execute("SELECT rolname::text FROM pg_roles WHERE rolname = ANY (%s)",
                        (installed.created_roles,))
            left = {r[0] for r in cur.fetchall()}
    finally:
        conn.remove_notice_handler(keep)
    return Uninstall(schema, drop_data, tables,
                     [r for r in installed.created_roles if r not in left],
                     [r for r in installed.created_roles if r in left], warnings)
