"""The library's face: one object per installation, over which the CLI is a
thin layer and which applications can use directly::

    from auditsql import Audit

    with Audit("postgresql://localhost/app") as audit:
        audit.install(retention="saas")
        audit.attach("public.orders", "public.users")
        report = audit.verify()
        assert report.result != "fail", report.failed

Each method runs in its own transaction (``run_retention``: two, as the
scheduled job does) and raises the typed errors of :mod:`auditsql.errors`;
results are frozen dataclasses. The SQL behind each method is named in
docs/architecture.md. Setting the actor of a transaction is not here: it
belongs to the application's own connection (:func:`auditsql.set_actor`,
:func:`auditsql.audit_context`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import psycopg

from auditsql import __version__, catalog, checks, cron, db, erasure, errors, holds, installer
from auditsql import events as events_
from auditsql import integrity as integrity_
from auditsql import reading
from auditsql import revert as revert_
from auditsql import partitions as parts_
from auditsql import retention as retention_
from auditsql.cron import DEFAULT_CRON, CronJob, CronStatus
from auditsql.fingerprint import ObjectState, classify
from auditsql.holds import Hold, Placed
from auditsql.integrity import DEFAULT_BLOCK_SIZE, Digest, Sealed
from auditsql.partitions import Due, Partitions
from auditsql.reading import Change, Event, Progress, Row
from auditsql.render import Settings, install_definitions
from auditsql.retention import DEFAULT_MONTHS_AHEAD, Moved, Policy, PolicySet, Removed, RunResult

DEFAULT_SCHEMA = "audit"


@dataclass(frozen=True)
class Roles:
    """The roles an installation uses (docs/security.md): created by install
    when missing, else used as they are."""

    owner: str = "auditsql_owner"  # owns every audit object; NOLOGIN
    reader: str = "auditsql_reader"  # reads the log
    writer: str = "auditsql_writer"  # logs application events
    admin: str = "auditsql_admin"  # retention, holds, erasure, DDL on audit objects
    operator: str = "auditsql_operator"  # attaches and detaches the tables it owns

    def settings(self, schema: str) -> Settings:
        return Settings(schema, self.owner, self.reader, self.writer, self.admin, self.operator)


@dataclass(frozen=True)
class Status:
    """The installation: its version, retention policy, audited tables and
    the objects it made, each compared with what this version makes."""

    schema: str
    version: str
    policy: Policy | None
    tables: list[catalog.AuditedTable]
    objects: list[ObjectState]


@dataclass(frozen=True)
class RetentionStatus:
    """The policy, legal holds, partitions, oldest event and the pg_cron job."""

    schema: str
    policy: Policy | None
    holds: list[Hold]
    partitions: Partitions
    oldest_event: datetime | None
    next_due: Due | None
    cron: CronStatus


@dataclass(frozen=True)
class Report:
    """What ``verify`` found: every check that applied, in the order run."""

    schema: str
    installed_version: str | None
    results: list[checks.Result]

    @property
    def result(self) -> str:
        """``fail`` if a check failed, else ``warn`` if one warned, else ``pass``."""
        return checks.worst(self.results)

    @property
    def failed(self) -> list[checks.Result]:
        return [r for r in self.results if r.status == checks.FAIL]


class Audit:
    """auditsql in one database schema, reached through a connection or a DSN.

    Given a DSN, the object opens (and, used as a context manager, closes)
    its own connection, and can reach pg_cron's database when that is
    another one of the server. Given a connection, it uses it as it is;
    pass ``dsn`` too if pg_cron lives in another database.
    """

    def __init__(self, conn_or_dsn: psycopg.Connection | str, *,
                 schema: str = DEFAULT_SCHEMA, dsn: str | None = None) -> None:
        if isinstance(conn_or_dsn, str):
            self.connection = db.connect(conn_or_dsn)
            self.dsn: str | None = conn_or_dsn
            self._owned = True
        else:
            self.connection = conn_or_dsn
            self.dsn = dsn
            self._owned = False
        self.schema = schema

    def close(self) -> None:
        """Close the connection, if this object opened it."""
        if self._owned:
            self.connection.close()

    def __enter__(self) -> Audit:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- installation ------------------------------------------------------

    def install(self, *, retention: str | None = None,
                admin_actor_roles: list[str] | None = None,
                require_actor: bool | None = None, roles: Roles | None = None) -> str:
        """Install, or bring an installation up to date with the same
        settings; returns the installed version. ``retention`` sets the
        policy in the same transaction; ``admin_actor_roles`` and
        ``require_actor`` change the installation's settings (None keeps
        them); ``roles`` names the roles install uses."""
        return installer.install(self.connection, self._settings(roles), retention,
                                 admin_roles=admin_actor_roles, require_actor=require_actor)

    def install_script(self, *, retention: str | None = None,
                       admin_actor_roles: list[str] | None = None,
                       require_actor: bool | None = None, roles: Roles | None = None) -> str:
        """What :meth:`install` would run on this server as this role, as one
        transaction to feed to psql."""
        settings = self._settings(roles)
        with db.transaction(self.connection) as cur:
            to = installer.target(cur)
        return installer.dry_run_script(settings, to, retention, admin_roles=admin_actor_roles,
                                        require_actor=require_actor)

    def _settings(self, roles: Roles | None = None) -> Settings:
        found = (roles or Roles()).settings(self.schema)
        found.validate()
        return found

    def upgrade(self) -> installer.Upgrade:
        """Bring the installation up to this version (see docs/upgrading.md)."""
        return installer.upgrade(self.connection, self.schema)

    def uninstall(self, *, drop_data: bool = False) -> tuple[installer.Uninstall,
                                                             CronJob | None]:
        """Take auditsql out of the database, keeping the log unless
        ``drop_data``; removes the pg_cron job first when there is one and
        pg_cron can be reached. Returns what was done and the job removed."""
        try:
            job = self.unschedule()
        except errors.AuditsqlError:
            job = None
        return installer.uninstall(self.connection, self.schema, drop_data=drop_data), job

    # -- tables ------------------------------------------------------------

    def attach(self, *tables: str, id_columns: list[str] | None = None,
               capture: str | None = None, exclude: list[str] | None = None,
               redact: list[str] | None = None, on_change: dict[str, str] | None = None,
               require_actor: bool | None = None,
               trust_id_columns: bool | None = None) -> installer.Tables:
        """Start auditing ``tables``, all or none. Every option left None
        keeps what the table has (a new table: its primary key, row
        capture, no column policies); an empty value clears it."""
        return installer.attach(
            self.connection, list(tables), self._settings(), id_columns, capture,
            installer.Policies(exclude, redact, on_change, require_actor, trust_id_columns))

    def detach(self, *tables: str) -> installer.Tables:
        """Stop auditing ``tables``, all or none; their events stay."""
        return installer.detach(self.connection, list(tables), self._settings())

    def tables(self) -> list[catalog.AuditedTable]:
        """Every audited table as the catalog has it now, with its problems."""
        with db.transaction(self.connection) as cur:
            catalog.require_installed(cur, self.schema)
            return catalog.audited_tables(cur, self.schema)

    # -- reading the installation ------------------------------------------

    def status(self) -> Status:
        """The version, policy, audited tables and objects."""
        with db.transaction(self.connection) as cur:
            installed = catalog.installation(cur, self.schema)
            script = install_definitions(installed.settings,
                                         self.connection.info.server_version,
                                         event_trigger=installed.event_trigger)
            return Status(
                self.schema, installed.version, retention_.policy(cur, self.schema),
                catalog.audited_tables(cur, self.schema),
                classify(script, catalog.fingerprinted_objects(cur, self.schema), __version__))

    def verify(self, *, expect: Iterable[str] = (), all_tables: bool = False,
               exclude: Iterable[str] = (), integrity: bool = False,
               digests: Iterable[Digest] = ()) -> Report:
        """Run every check of docs/verify.md, reading only. ``expect`` names
        tables that must be audited; ``all_tables`` asks that every table
        be, but those matching ``exclude``. ``integrity`` recomputes the
        hash chain over the log (docs/integrity.md), and compares it with
        ``digests``, chain heads kept from earlier runs."""
        kept = list(digests)
        if kept and not integrity:
            raise errors.InvalidValue("digests are compared only when the chain is verified "
                                      "(integrity=True)")
        for found in kept:
            if found.schema != self.schema:
                raise errors.InvalidValue(
                    f"a digest of schema {found.schema!r} cannot check schema {self.schema!r}")
        with db.transaction(self.connection, read_only=True) as cur:
            expected = [_expected(cur, name) for name in expect]
            ctx = checks.Context(cur, self.schema, expected, all_tables, list(exclude),
                                 dsn=self.dsn, integrity=integrity, digests=kept)
            results = checks.run(ctx)
            try:
                installed: str | None = ctx.installation.version
            except errors.AuditsqlError:
                installed = None
        return Report(self.schema, installed, results)

    # -- reading the log ---------------------------------------------------

    def history(self, table: str, entity_id: str) -> list[Event]:
        """Every event of one row, oldest first, under each key it has had."""
        return reading.history(self.connection, self.schema, table, entity_id)

    def row_at(self, table: str, entity_id: str, at: datetime) -> Row | None:
        """The row as the log says it was at ``at`` (None: no row had the
        key then); excluded columns absent, redacted ones as the marker."""
        return reading.row_at(self.connection, self.schema, table, entity_id, at)

    def table_at(self, table: str, at: datetime) -> dict[str, Row]:
        """Every row as the log says it was at ``at``: entity id -> row."""
        return reading.table_at(self.connection, self.schema, table, at)

    def changes(self, table: str, entity_id: str | None = None,
                column: str | None = None) -> list[Change]:
        """The columns the table's data events changed, one ``Change`` each
        (of one row, of one column), oldest first."""
        return reading.changes(self.connection, self.schema, table, entity_id, column)

    def events(self, *, request_id: str | None = None, txid: int | None = None,
               actor_id: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 1000) -> list[Event]:
        """The events of one request, of one transaction, or of one actor
        from ``since`` up to ``until`` (at most ``limit``), oldest first."""
        return reading.events(self.connection, self.schema, request_id=request_id, txid=txid,
                              actor_id=actor_id, since=since, until=until, limit=limit)

    def snapshot(self, table: str, batch_size: int = reading.DEFAULT_BATCH_SIZE,
                 progress: Progress | None = None) -> int:
        """Record every row of an audited table as a ``snapshot`` event, a
        committed batch at a time (``progress`` gets the rows so far after
        each); returns the rows recorded."""
        return reading.snapshot(self.connection, self.schema, table, batch_size, progress)

    def require_audited(self, *tables: str) -> list[str]:
        """The qualified names of ``tables``; NoSuchTable or NotAudited for
        the first that does not exist or is not audited. To check every
        table before snapshotting any."""
        return reading.require_audited(self.connection, self.schema, list(tables))

    # -- tamper evidence ---------------------------------------------------

    def seal(self, block_size: int = DEFAULT_BLOCK_SIZE) -> Sealed:
        """Hash the committed events not sealed yet into blocks of the chain
        (docs/integrity.md); safe to run at any time, alongside writers and
        other runs."""
        return integrity_.seal(self.connection, self.schema, block_size)

    def digest(self) -> Digest:
        """The chain head, to keep outside the database."""
        return integrity_.digest(self.connection, self.schema)

    # -- retention ---------------------------------------------------------

    def set_retention(self, policy: str, *, under_a_year: bool = False,
                      shorten: bool = False) -> PolicySet:
        """Set how long events are kept (financial, medical, saas or an
        interval). A policy under a year, or shorter than the one in force,
        is refused (PolicyRefused) unless ``under_a_year`` / ``shorten``."""
        return retention_.set_policy(self.connection, self.schema, policy,
                                    under_a_year=under_a_year, shorten=shorten)

    def policy(self) -> Policy | None:
        """The retention policy in force, or None."""
        with db.transaction(self.connection) as cur:
            catalog.require_installed(cur, self.schema)
            return retention_.policy(cur, self.schema)

    def require_policy(self) -> Policy:
        """The retention policy in force, or NoPolicy saying how to set one."""
        return retention_.require_policy(self.connection, self.schema)

    def retention_status(self) -> RetentionStatus:
        """The policy, holds, partitions, oldest event and pg_cron job."""
        with db.transaction(self.connection) as cur:
            catalog.require_installed(cur, self.schema)
            policy = retention_.policy(cur, self.schema)
            held = holds.holds(cur, self.schema)
            parts = parts_.partitions(cur, self.schema)
            oldest = parts_.oldest_event(cur, self.schema)
            due = parts_.next_due(cur, self.schema)
        return RetentionStatus(self.schema, policy, held, parts, oldest, due,
                               cron.status(self.connection, self.schema, dsn=self.dsn))

    def maintain(self, months_ahead: int = DEFAULT_MONTHS_AHEAD
                 ) -> list[Moved]:
        """Create the partitions ahead; move events out of the default one."""
        return retention_.maintain(self.connection, self.schema, months_ahead)

    def apply_retention(self) -> list[Removed]:
        """Remove what the policy makes due (NoPolicy without one)."""
        return retention_.apply(self.connection, self.schema)

    def run_retention(self, months_ahead: int = DEFAULT_MONTHS_AHEAD, *,
                      dry_run: bool = False) -> RunResult:
        """Maintenance, then retention, as the scheduled job runs them; with
        ``dry_run``, what they would do, changing nothing."""
        if dry_run:
            return retention_.dry_run(self.connection, self.schema, months_ahead)
        return retention_.run(self.connection, self.schema, months_ahead)

    def holds(self) -> list[Hold]:
        """Every legal hold in force, oldest first."""
        with db.transaction(self.connection) as cur:
            catalog.require_installed(cur, self.schema)
            return holds.holds(cur, self.schema)

    def hold(self, entity_type: str, entity_id: str, reason: str, *,
             future: bool = False) -> Placed:
        """Put an entity under legal hold: retention keeps its events."""
        return holds.place(self.connection, self.schema, entity_type, entity_id, reason,
                           future=future)

    def release(self, entity_type: str, entity_id: str,
                reason: str | None = None) -> Hold:
        """Lift a legal hold (NoSuchHold when there is none)."""
        return holds.release(self.connection, self.schema, entity_type, entity_id, reason)

    def schedule(self, schedule: str = DEFAULT_CRON,
                 months_ahead: int = DEFAULT_MONTHS_AHEAD) -> CronJob:
        """Schedule maintenance and retention with pg_cron, as the connected role."""
        return cron.schedule(self.connection, self.schema, schedule, months_ahead, dsn=self.dsn)

    def unschedule(self) -> CronJob | None:
        """Remove the pg_cron job; returns it, or None when there was none."""
        return cron.unschedule(self.connection, self.schema, dsn=self.dsn)

    # -- erasure -----------------------------------------------------------

    def erase(self, entity_type: str, entity_id: str | None, *, reason: str,
              columns: list[str] | None = None) -> int:
        """Erase values from past events of one entity (``entity_id`` None:
        of every entity of the type): ``columns``, or every column but the
        key. Returns how many events changed; recorded as an ``erased`` event."""
        return erasure.erase(self.connection, self.schema, entity_type, entity_id, columns,
                             reason)


    # -- reading the log and undoing changes ---------------------------------

    def log(self, *, table: str | None = None, entity_id: str | None = None,
            actor: str | None = None, action: str | None = None,
            request_id: str | None = None, txid: int | None = None,
            since: datetime | None = None, until: datetime | None = None,
            after_id: int | None = None, limit: int | None = None,
            newest_first: bool = True) -> list[events_.Event]:
        """The events matching every condition given, newest first (``since``
        inclusive, ``until`` exclusive; ``entity_id`` also matches the key a
        row had before a key change)."""
        return events_.select(self.connection, self.schema, events_.Filter(
            table, entity_id, actor, action, request_id, txid, since, until, after_id),
            limit=limit, newest_first=newest_first)

    def event(self, event_id: int) -> events_.Event:
        """One event by its id (NoSuchEvent when there is none)."""
        return events_.event(self.connection, self.schema, event_id)

    def export(self, fmt: str = "jsonl", *, since: datetime | None = None,
               until: datetime | None = None, after_id: int | None = None,
               zone: str = "UTC") -> Iterator[bytes]:
        """The events as stored, in id order, streamed with COPY: one event
        per chunk (``csv``: the header first, unless ``after_id``), times
        in ``zone``. Memory stays flat however many."""
        return events_.export(self.connection, self.schema,
                              events_.Filter(since=since, until=until, after_id=after_id),
                              fmt, zone)

    def revert_sql(self, table: str | None = None, entity_id: str | None = None, *,
                   to: datetime | None = None, request_id: str | None = None,
                   txid: int | None = None,
                   actor: revert_.Actor | None = None) -> revert_.Plan:
        """What undoing a row back to ``to``, a request or a transaction would
        run (``Plan.script``) and the conflicts found, changing nothing."""
        return revert_.plan(self.connection, self.schema,
                            revert_.Target(table, entity_id, to, request_id, txid), actor)

    def revert(self, table: str | None = None, entity_id: str | None = None, *,
               to: datetime | None = None, request_id: str | None = None,
               txid: int | None = None, actor: revert_.Actor,
               force: bool = False) -> revert_.Plan:
        """Undo it in one transaction recorded as ``actor``'s changes;
        RevertConflict (nothing changed) on a conflict unless ``force``."""
        return revert_.apply(self.connection, self.schema,
                             revert_.Target(table, entity_id, to, request_id, txid), actor,
                             force=force)


def _expected(cur: psycopg.Cursor, name: str) -> checks.Expected:
    """A table named with ``expect``; one that does not exist is reported
    by the check, not raised."""
    try:
        oid, qualified = catalog.resolve_table(cur, name)
    except errors.NoSuchTable:
        return checks.Expected(name, None, None)
    return checks.Expected(name, oid, qualified)
