"""Retention: the policy, legal holds, partition maintenance, and scheduling
with pg_cron.

The work happens in SQL (``maintain``, ``apply_retention``, ``set_retention``,
``place_hold``, ``release_hold``, and what judges and previews them:
``retention_change``, ``retention_preview``, ``maintain_preview``,
``normalize_entity_id``; see docs/retention.md); this module calls it, reads
what is there, and talks to pg_cron, which may live in another database of
the same server (``cron.database_name``). Functions that change something
run in one transaction each, except :func:`run`, which runs maintenance and
retention in two, as the scheduled job does; :func:`preview` and
:func:`dry_run` read in one read-only transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
import re
import shlex
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from auditsql import catalog, db, errors

POLICIES = {"financial": "7 years", "medical": "5 years", "saas": "3 years"}
DEFAULT_CRON = "17 3 * * *"
DEFAULT_MONTHS_AHEAD = 3
MAX_MONTHS_AHEAD = 120
MAX_REASON = 1000
MAX_CRON = 200
RECENT_RUNS = 5


# --------------------------------------------------------------------------
# What there is
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The retention policy in force."""

    name: str  # financial | medical | saas | custom
    keep: str  # the interval, as PostgreSQL writes it: '7 years'
    set_at: datetime
    set_by: str


@dataclass(frozen=True)
class Hold:
    """A legal hold on one entity."""

    entity_type: str
    entity_id: str
    reason: str
    placed_at: datetime
    placed_by: str


@dataclass(frozen=True)
class Moved:
    """A partition maintenance created; ``rows`` came from the default partition."""

    partition: str
    range_from: datetime
    range_to: datetime
    rows: int


@dataclass(frozen=True)
class Removed:
    """A partition retention dropped (or rebuilt, keeping the held events)."""

    partition: str
    range_from: datetime
    range_to: datetime
    rows_removed: int
    rows_kept: int


@dataclass(frozen=True)
class RunResult:
    """What one maintenance-and-retention run did (or, for a dry run, would do)."""

    maintained: list[Moved]
    removed: list[Removed]


@dataclass(frozen=True)
class PolicySet:
    """What setting the retention policy did."""

    policy: Policy  # the policy in force now
    previous: Policy | None  # the one before (None: none was set)
    changed: bool  # False: the policy given was already in force
    removes: list[Removed]  # what the next retention run would remove under it


@dataclass(frozen=True)
class Placed:
    """What placing a legal hold did."""

    placed: bool  # False: the entity was already held (nothing changed)
    hold: Hold  # the hold in force, with the entity id as the log spells it
    events: int  # the entity's events in the log


@dataclass(frozen=True)
class CronJob:
    """The pg_cron job that runs maintenance and retention."""

    jobid: int
    name: str
    schedule: str
    command: str
    database: str
    username: str
    active: bool


@dataclass(frozen=True)
class CronRun:
    """One run of the job, from ``cron.job_run_details``."""

    runid: int
    status: str
    return_message: str | None
    start_time: datetime | None
    end_time: datetime | None


@dataclass(frozen=True)
class CronStatus:
    """pg_cron on this server, and the job for this installation."""

    available: bool  # loaded (shared_preload_libraries)
    database: str | None = None  # cron.database_name
    installed: bool = False  # the extension exists in that database
    job: CronJob | None = None
    runs: list[CronRun] = field(default_factory=list)
    problem: str | None = None  # why the job could not be read, if it could not


@dataclass(frozen=True)
class Partitions:
    """The log's partitions as retention sees them."""

    count: int  # monthly (non-default) partitions
    oldest: str | None
    newest: str | None
    current_month_covered: bool
    months_ahead: int  # consecutive months after the current one with a partition
    default_partition_empty: bool


@dataclass(frozen=True)
class Due:
    """The next partition retention will remove, and when."""

    partition: str
    range_from: datetime
    range_to: datetime
    due_at: datetime


@dataclass(frozen=True)
class RetentionStatus:
    """Everything ``auditsql retention status`` shows."""

    schema: str
    policy: Policy | None
    holds: list[Hold]
    partitions: Partitions
    oldest_event: datetime | None
    next_due: Due | None
    cron: CronStatus


@dataclass(frozen=True)
class HealthCheck:
    """One retention check, in the shape ``auditsql verify`` reports."""

    id: str
    result: str  # pass | fail
    detail: str
    hint: str


@dataclass(frozen=True)
class RetentionHealth:
    """The facts the retention checks of ``auditsql verify`` judge."""

    current_month_covered: bool
    months_ahead: int
    default_partition_empty: bool
    policy: Policy | None
    pg_cron_available: bool
    job_scheduled: bool | None  # None: pg_cron absent, or its database unreadable
    cron_problem: str | None = None  # why the job could not be read, if it could not

    @property
    def policy_set(self) -> bool:
        return self.policy is not None

    def checks(self, min_months_ahead: int = 1) -> list[HealthCheck]:
        """The four retention checks, each passing or failing with a fix hint."""
        ahead = self.current_month_covered and self.months_ahead >= min_months_ahead
        if self.job_scheduled is None:
            job_result = "pass" if not self.pg_cron_available else "fail"
            job_detail = (
                "pg_cron is not available; run `auditsql retention run` from a scheduler"
                if not self.pg_cron_available
                else "pg_cron is available but its job could not be read"
                + (f": {self.cron_problem}" if self.cron_problem else "")
            )
        else:
            job_result = "pass" if self.job_scheduled else "fail"
            job_detail = "scheduled" if self.job_scheduled else "pg_cron is available, no job"
        return [
            HealthCheck(
                "retention.partitions_ahead",
                "pass" if ahead else "fail",
                f"current month {'has' if self.current_month_covered else 'lacks'} a partition;"
                f" {self.months_ahead} month(s) ahead",
                "run `auditsql retention run` (or schedule it) to create partitions ahead",
            ),
            HealthCheck(
                "retention.default_partition_empty",
                "pass" if self.default_partition_empty else "fail",
                "empty" if self.default_partition_empty else "holds events",
                "run `auditsql retention run` to move them into monthly partitions",
            ),
            HealthCheck(
                "retention.policy_set",
                "pass" if self.policy else "fail",
                f"{self.policy.name} ({self.policy.keep})" if self.policy else "no policy",
                "run `auditsql retention set financial|medical|saas|INTERVAL`",
            ),
            HealthCheck(
                "retention.job_scheduled",
                job_result,
                job_detail,
                "run `auditsql retention schedule`",
            ),
        ]


# --------------------------------------------------------------------------
# Transactions and errors
# --------------------------------------------------------------------------


def _translate(exc: psycopg.Error) -> errors.AuditsqlError:
    """Server errors of the retention functions as typed errors."""
    message = str(db.translate(exc))
    if isinstance(exc, pgerrors.InvalidParameterValue):
        return errors.InvalidValue(message)
    if isinstance(exc, pgerrors.ObjectNotInPrerequisiteState):
        return errors.NoPolicy(message)
    if isinstance(exc, pgerrors.UndefinedObject):
        return errors.NoSuchHold(message)
    if isinstance(exc, pgerrors.NoDataFound):
        return errors.HoldsNothing(message)
    if message.startswith("invalid schedule"):
        return errors.InvalidValue(
            f"{message}: expected five cron fields, such as '{DEFAULT_CRON}'"
        )
    return db.translate(exc)


@contextmanager
def _transaction(conn: psycopg.Connection) -> Iterator[psycopg.Cursor]:
    """One transaction, with retention's errors typed."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET LOCAL IntervalStyle = 'postgres'")
            yield cur
    except psycopg.Error as exc:
        raise _translate(exc) from exc


def _require(cur: psycopg.Cursor, schema: str) -> None:
    """auditsql installed in *schema*, with retention (0.1.0 and later)."""
    catalog.require_installed(cur, schema)
    if not _has_retention(cur, schema):
        raise errors.NotInstalled(
            f"retention is not installed in schema {schema!r}; run `auditsql install` again"
        )


def _has_retention(cur: psycopg.Cursor, schema: str) -> bool:
    cur.execute("SELECT to_regclass(format('%%I.retention', %s::text)) IS NOT NULL", (schema,))
    row = cur.fetchone()
    return bool(row and row[0])


def _call(schema: str, function: str, *args: sql.Composable) -> sql.Composed:
    """``SELECT * FROM <schema>.<function>(args)``."""
    return sql.SQL("SELECT * FROM {}.{}({})").format(
        sql.Identifier(schema), sql.Identifier(function), sql.SQL(", ").join(args)
    )


# --------------------------------------------------------------------------
# Validation (before anything reaches the server)
# --------------------------------------------------------------------------


def _check_text(value: str, what: str, maximum: int) -> None:
    if "\x00" in value:
        raise errors.InvalidValue(f"{what} may not contain NUL characters")
    if len(value) > maximum:
        raise errors.InvalidValue(f"{what} may be at most {maximum} characters")


def check_months_ahead(months_ahead: int) -> None:
    """InvalidValue unless 0 <= months_ahead <= 120."""
    if not 0 <= months_ahead <= MAX_MONTHS_AHEAD:
        raise errors.InvalidValue(
            f"months ahead must be between 0 and {MAX_MONTHS_AHEAD}, not {months_ahead}"
        )


_CRON_FIELD = re.compile(r"[0-9A-Za-z*,/$-]+")
_CRON_FORMS = (
    re.compile(r"@[a-z]+"),  # @daily, @hourly, ... (pg_cron decides which it knows)
    re.compile(r"[1-9][0-9]? seconds"),  # pg_cron 1.5 and later
)


def check_cron(schedule: str) -> None:
    """InvalidValue unless *schedule* has the shape of a pg_cron schedule: five
    fields of digits, names, ``* , / - $``, an @-shortcut, or 'N seconds'.
    pg_cron judges the values (61 minutes, unknown names)."""
    _check_text(schedule, "the schedule", MAX_CRON)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in schedule):
        raise errors.InvalidValue("the schedule may not contain control characters")
    fields = schedule.split()
    if len(fields) == 5 and " ".join(fields) == schedule.strip() and all(
        _CRON_FIELD.fullmatch(f) for f in fields
    ):
        return
    if any(form.fullmatch(schedule.strip()) for form in _CRON_FORMS):
        return
    raise errors.InvalidValue(
        f"invalid schedule {schedule!r}: expected five cron fields, such as '{DEFAULT_CRON}'"
    )


# --------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------


def policy(cur: psycopg.Cursor, schema: str) -> Policy | None:
    """The retention policy in force, or None (none set, or no retention installed)."""
    if not _has_retention(cur, schema):
        return None
    cur.execute(
        sql.SQL("SELECT policy, keep::text, set_at, set_by FROM {}.retention").format(
            sql.Identifier(schema)
        )
    )
    row = cur.fetchone()
    return Policy(*row) if row else None


def set_policy(conn: psycopg.Connection, schema: str, value: str, *,
               under_a_year: bool = False, shorten: bool = False) -> PolicySet:
    """Set the retention policy: financial, medical, saas, or an interval
    with its units. A policy keeping events for less than a year needs
    *under_a_year*, one keeping them for less time than the policy in force
    needs *shorten*; without, PolicyRefused says what the next retention run
    would then remove (and so does the result, once set)."""
    with _transaction(conn) as cur:
        _require(cur, schema)
        return _set_policy(cur, schema, value, under_a_year, shorten, during_install=False)


def check_policy_text(value: str) -> None:
    """InvalidValue for a policy no server could accept (the server checks the rest)."""
    _check_text(value, "the retention policy", 100)


def set_policy_in(cur: psycopg.Cursor, schema: str, value: str) -> PolicySet:
    """Set the retention policy inside the caller's transaction (install
    uses it). Neither a policy under a year nor a shorter one than the
    policy in force is set this way: the refusal says to install without
    the policy and then run `auditsql retention set` with the flag."""
    return _set_policy(cur, schema, value, False, False, during_install=True)


def _set_policy(cur: psycopg.Cursor, schema: str, value: str, under_a_year: bool,
                shorten: bool, *, during_install: bool) -> PolicySet:
    check_policy_text(value)
    ident = sql.Identifier(schema)
    try:
        cur.execute("SET LOCAL IntervalStyle = 'postgres'")
        previous = policy(cur, schema)
        # One transaction, so one now(): the server judges the policy here
        # exactly as set_retention will below.
        cur.execute(
            sql.SQL("SELECT policy, keep::text, under_a_year, shortens FROM {}.retention_change(%s)")
            .format(ident),
            (value,),
        )
        row = cur.fetchone()
        assert row is not None
        name, keep, is_under, shortens = row
        removes = _preview(cur, schema, keep)
        again = previous is not None and (previous.name, previous.keep) == (name, keep)
        if not again and ((is_under and not under_a_year) or (shortens and not shorten)):
            raise errors.PolicyRefused(
                _refusal(value, keep, previous, is_under, shortens, removes, during_install),
                removes,
            )
        cur.execute(
            _call(schema, "set_retention", sql.Placeholder(), sql.Placeholder(), sql.Placeholder()),
            (value, under_a_year, shorten),
        )
    except psycopg.Error as exc:
        raise _translate(exc) from exc
    found = policy(cur, schema)
    assert found is not None
    return PolicySet(found, previous, not again, removes)


def _refusal(value: str, keep: str, previous: Policy | None, is_under: bool, shortens: bool,
             removes: list[Removed], during_install: bool) -> str:
    """Why a policy is refused, what it would remove, and how to set it anyway
    (the command names every flag the policy needs)."""
    why, flags = [], []
    if is_under:
        why.append("less than a year")
        flags.append("--under-a-year")
    if shortens and previous is not None:
        why.append(f"less time than the policy in force, {previous.name} ({previous.keep})")
        flags.append("--shorten")
    command = f"auditsql retention set {shlex.quote(value)} {' '.join(flags)}"
    how = (f"install does not set such a policy: install without --retention, then run `{command}`"
           if during_install else f"if that is meant, run `{command}`")
    given = repr(value) if value.strip() == keep else f"{value!r} ({keep})"
    return (f"retention policy {given} keeps events for {' and for '.join(why)};"
            f" under it the next retention run would remove {summarize(removes)}; {how}")


def summarize(removes: list[Removed]) -> str:
    """'nothing', or how many events from how many partitions, and how many
    legal holds keep."""
    if not removes:
        return "nothing"
    events = sum(r.rows_removed for r in removes)
    kept = sum(r.rows_kept for r in removes)
    parts = len(removes)
    text = f"{events} events from {parts} partition{'s' if parts != 1 else ''}"
    return text + (f" ({kept} kept under legal hold)" if kept else "")


# --------------------------------------------------------------------------
# Legal holds
# --------------------------------------------------------------------------


def holds(cur: psycopg.Cursor, schema: str) -> list[Hold]:
    """Every hold in force, oldest first."""
    if not _has_retention(cur, schema):
        return []
    cur.execute(
        sql.SQL(
            "SELECT entity_type, entity_id, reason, placed_at, placed_by FROM {}.legal_holds"
            " ORDER BY placed_at, entity_type, entity_id"
        ).format(sql.Identifier(schema))
    )
    return [Hold(*row) for row in cur.fetchall()]


def _hold(cur: psycopg.Cursor, schema: str, entity_type: str, entity_id: str) -> Hold | None:
    cur.execute(
        sql.SQL(
            "SELECT entity_type, entity_id, reason, placed_at, placed_by FROM {}.legal_holds"
            " WHERE entity_type = %s AND entity_id = %s"
        ).format(sql.Identifier(schema)),
        (entity_type, entity_id),
    )
    row = cur.fetchone()
    return Hold(*row) if row else None


def normalize_entity_id(cur: psycopg.Cursor, schema: str, entity_type: str,
                        entity_id: str) -> str:
    """*entity_id* as the log spells it (``audit.normalize_entity_id``):
    '[1001,1]' is '[1001, 1]' for a table keyed by two integers."""
    cur.execute(
        sql.SQL("SELECT {}.normalize_entity_id(%s, %s)").format(sql.Identifier(schema)),
        (entity_type, entity_id),
    )
    row = cur.fetchone()
    return str(row[0]) if row and row[0] is not None else entity_id


def _count_events(cur: psycopg.Cursor, schema: str, entity_type: str, entity_id: str) -> int:
    """The entity's events, not counting the records of its legal holds."""
    cur.execute(
        sql.SQL("SELECT count(*) FROM {}.events WHERE entity_type = %s AND entity_id = %s"
                " AND action NOT IN ('legal_hold_placed', 'legal_hold_released')")
        .format(sql.Identifier(schema)),
        (entity_type, entity_id),
    )
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _check_entity(entity_type: str, entity_id: str) -> None:
    for value, what in ((entity_type, "the entity type"), (entity_id, "the entity id")):
        _check_text(value, what, 10_000)


def place_hold(conn: psycopg.Connection, schema: str, entity_type: str, entity_id: str,
               reason: str, *, future: bool = False) -> Placed:
    """Put an entity under legal hold; the id is read as the log spells it
    (see :func:`normalize_entity_id`). A hold matching no event in the log
    is refused (HoldsNothing) unless *future*: it then holds the entity's
    future events. Holding an entity already held changes nothing."""
    _check_entity(entity_type, entity_id)
    if not reason.strip():
        raise errors.InvalidValue("a legal hold needs a reason (--reason)")
    _check_text(reason, "the reason", MAX_REASON)
    with _transaction(conn) as cur:
        _require(cur, schema)
        normalized = normalize_entity_id(cur, schema, entity_type, entity_id)
        try:
            cur.execute(
                _call(schema, "place_hold", *[sql.Placeholder()] * 4),
                (entity_type, entity_id, reason, future),
            )
        except pgerrors.NoDataFound as exc:
            given = f" (given as {entity_id})" if normalized != entity_id else ""
            raise errors.HoldsNothing(
                f"no event in the log has entity type {entity_type} and entity id {normalized}"
                f"{given}, so the hold would hold nothing; check the id against"
                " events.entity_id, or add --future to hold the entity's future events"
            ) from exc
        row = cur.fetchone()
        placed = bool(row and row[0])
        hold = _hold(cur, schema, entity_type, normalized)
        assert hold is not None
        return Placed(placed, hold, _count_events(cur, schema, entity_type, hold.entity_id))


def release_hold(
    conn: psycopg.Connection,
    schema: str,
    entity_type: str,
    entity_id: str,
    reason: str | None = None,
) -> Hold:
    """Lift the legal hold on an entity (the id read as place_hold reads
    it); returns the hold released."""
    _check_entity(entity_type, entity_id)
    if reason is not None:
        _check_text(reason, "the reason", MAX_REASON)
    with _transaction(conn) as cur:
        _require(cur, schema)
        normalized = normalize_entity_id(cur, schema, entity_type, entity_id)
        hold = (_hold(cur, schema, entity_type, normalized)
                or _hold(cur, schema, entity_type, entity_id))
        cur.execute(
            _call(schema, "release_hold", sql.Placeholder(), sql.Placeholder(), sql.Placeholder()),
            (entity_type, entity_id, reason),
        )
    assert hold is not None
    return hold


# --------------------------------------------------------------------------
# Maintenance and retention
# --------------------------------------------------------------------------


def maintain(conn: psycopg.Connection, schema: str,
             months_ahead: int = DEFAULT_MONTHS_AHEAD) -> list[Moved]:
    """Create partitions ahead and move rows out of the default partition."""
    check_months_ahead(months_ahead)
    with _transaction(conn) as cur:
        _require(cur, schema)
        cur.execute(_call(schema, "maintain", sql.Literal(months_ahead)))
        return [Moved(*row) for row in cur.fetchall()]


def apply(conn: psycopg.Connection, schema: str, as_of: datetime | None = None) -> list[Removed]:
    """Remove the partitions the policy no longer keeps (as of now, or *as_of*)."""
    with _transaction(conn) as cur:
        _require(cur, schema)
        args = [sql.Placeholder()] if as_of is not None else []
        cur.execute(_call(schema, "apply_retention", *args), [as_of] if as_of else None)
        return [Removed(*row) for row in cur.fetchall()]


def require_policy(conn: psycopg.Connection, schema: str) -> Policy:
    """The policy in force, or NoPolicy saying how to set one."""
    with _transaction(conn) as cur:
        _require(cur, schema)
        found = policy(cur, schema)
    if found is None:
        raise errors.NoPolicy(
            "no retention policy is set, so nothing can be removed; "
            "run `auditsql retention set POLICY` first"
        )
    return found


def run(conn: psycopg.Connection, schema: str,
        months_ahead: int = DEFAULT_MONTHS_AHEAD) -> RunResult:
    """Maintenance, then retention, each in its own transaction (as the job).
    Nothing at all is done when no policy is set."""
    check_months_ahead(months_ahead)
    require_policy(conn, schema)
    maintained = maintain(conn, schema, months_ahead)
    removed = apply(conn, schema)
    return RunResult(maintained, removed)


def _preview(cur: psycopg.Cursor, schema: str, keep: str | None) -> list[Removed]:
    """What the next retention run removes keeping events for *keep* (None:
    the policy in force), after maintenance has moved the events waiting in
    the default partition into their months."""
    cur.execute(
        sql.SQL("SELECT * FROM {}.retention_preview(%s::interval, now(), true)")
        .format(sql.Identifier(schema)),
        (keep,),
    )
    return [Removed(*row) for row in cur.fetchall()]


@contextmanager
def _read_only(conn: psycopg.Connection) -> Iterator[psycopg.Cursor]:
    """One read-only transaction with one snapshot: the server refuses any
    write in it, so whatever runs inside changes nothing."""
    with _transaction(conn) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield cur


def preview(conn: psycopg.Connection, schema: str, keep: str | None = None) -> list[Removed]:
    """What the next retention run (maintenance, then retention) would
    remove under the policy in force, or keeping events for *keep*, as one
    row per partition. Changes nothing."""
    with _read_only(conn) as cur:
        _require(cur, schema)
        return _preview(cur, schema, keep)


def dry_run(conn: psycopg.Connection, schema: str,
            months_ahead: int = DEFAULT_MONTHS_AHEAD) -> RunResult:
    """What :func:`run` would do now: the partitions maintenance would
    create (with the events it would move into them) and those retention
    would then remove. One read-only transaction: nothing changes, nothing
    is recorded. NoPolicy when no policy is set, as for run."""
    check_months_ahead(months_ahead)
    require_policy(conn, schema)
    with _read_only(conn) as cur:
        _require(cur, schema)
        cur.execute(_call(schema, "maintain_preview", sql.Literal(months_ahead)))
        maintained = [Moved(*row) for row in cur.fetchall()]
        return RunResult(maintained, _preview(cur, schema, None))


# --------------------------------------------------------------------------
# pg_cron
# --------------------------------------------------------------------------


def cron_database(cur: psycopg.Cursor) -> str | None:
    """``cron.database_name`` when pg_cron is loaded, else None.

    Only superusers and members of pg_read_all_settings may read that
    setting; another role learns where pg_cron lives only when its extension
    is in this database, and otherwise gets PermissionDenied.
    """
    try:
        with cur.connection.transaction():
            cur.execute("SELECT current_setting('cron.database_name', true)")
            row = cur.fetchone()
        return row[0] if row and row[0] else None
    except pgerrors.InsufficientPrivilege:
        pass
    cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
    row = cur.fetchone()
    if row and row[0]:
        return cur.connection.info.dbname
    raise errors.PermissionDenied(
        f"role {cur.connection.info.user} may not read cron.database_name, so where pg_cron "
        "lives is unknown; connect as a superuser or a member of pg_read_all_settings"
    )


def job_name(database: str, schema: str) -> str:
    """The name of the job for one installation (one database and schema)."""
    return f"auditsql:{database}:{schema}"


def job_command(conn: psycopg.Connection, schema: str,
                months_ahead: int = DEFAULT_MONTHS_AHEAD) -> str:
    """The job's SQL: maintenance and retention, each in its own transaction,
    so that one's locks are gone before the other takes its own."""
    check_months_ahead(months_ahead)
    return sql.SQL(
        "BEGIN; SELECT {s}.maintain({n}); COMMIT; BEGIN; SELECT {s}.apply_retention(); COMMIT;"
    ).format(s=sql.Identifier(schema), n=sql.Literal(months_ahead)).as_string(conn)


@contextmanager
def cron_connection(dsn: str, conn: psycopg.Connection, database: str) -> Iterator[psycopg.Connection]:
    """A connection to pg_cron's database: *conn* itself when it is the same."""
    if database == conn.info.dbname:
        yield conn
        return
    with db.connect(make_conninfo(dsn, dbname=database)) as other:
        yield other


def _current_database(cur: psycopg.Cursor) -> str:
    """The database connected to, as the server names it: pg_cron's jobs name
    it so (a pooler's client-side name for it may differ)."""
    cur.execute("SELECT current_database()")
    row = cur.fetchone()
    assert row is not None
    return str(row[0])


def _require_pg_cron(cur: psycopg.Cursor, database: str) -> None:
    cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
    row = cur.fetchone()
    if not row or not row[0]:
        raise errors.PgCronUnavailable(
            f"pg_cron is loaded but not created in database {database!r} "
            "(cron.database_name); a superuser must run CREATE EXTENSION pg_cron there"
        )


def _unavailable() -> errors.PgCronUnavailable:
    return errors.PgCronUnavailable(
        "pg_cron is not available on this server (it is not in shared_preload_libraries); "
        "schedule `auditsql retention run --dsn ...` with cron, systemd or your job runner instead"
    )


def _job(cur: psycopg.Cursor, name: str, database: str) -> CronJob | None:
    cur.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
        " WHERE jobname = %s AND database = %s ORDER BY jobid LIMIT 1",
        (name, database),
    )
    row = cur.fetchone()
    return CronJob(*row) if row else None


def _runs(cur: psycopg.Cursor, jobid: int, limit: int = RECENT_RUNS) -> list[CronRun]:
    cur.execute(
        "SELECT runid, status, return_message, start_time, end_time FROM cron.job_run_details"
        " WHERE jobid = %s ORDER BY start_time DESC NULLS LAST, runid DESC LIMIT %s",
        (jobid, limit),
    )
    return [CronRun(*row) for row in cur.fetchall()]


def schedule(dsn: str, schema: str, cron: str = DEFAULT_CRON,
             months_ahead: int = DEFAULT_MONTHS_AHEAD) -> CronJob:
    """Schedule maintenance and retention with pg_cron; scheduling again
    replaces the schedule. The job runs as the connected role."""
    check_cron(cron)
    check_months_ahead(months_ahead)
    with db.connect(dsn) as conn:
        with _transaction(conn) as cur:
            _require(cur, schema)
            if cron_database(cur) is None:
                raise _unavailable()
            if policy(cur, schema) is None:
                raise errors.NoPolicy(
                    "no retention policy is set; run `auditsql retention set POLICY` "
                    "before scheduling retention"
                )
            admin = catalog.installation(cur, schema).settings.admin
            cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (admin,))
            row = cur.fetchone()
            if not row or not row[0]:
                raise errors.PermissionDenied(
                    f"role {conn.info.user} may not schedule retention: the job runs as "
                    f"the role that schedules it, which must be a member of {admin}"
                )
            cron_db = cron_database(cur)
            database = _current_database(cur)
        assert cron_db is not None
        name = job_name(database, schema)
        command = job_command(conn, schema, months_ahead)
        with cron_connection(dsn, conn, cron_db) as cconn, _transaction(cconn) as ccur:
            _require_pg_cron(ccur, cron_db)
            if cron_db == database:
                ccur.execute("SELECT cron.schedule(%s, %s, %s)", (name, cron, command))
            else:
                ccur.execute(
                    "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                    (name, cron, command, database),
                )
            job = _job(ccur, name, database)
    assert job is not None
    return job


def unschedule(dsn: str, schema: str) -> CronJob | None:
    """Remove the job; returns it, or None when there was none."""
    with db.connect(dsn) as conn:
        with _transaction(conn) as cur:
            catalog.require_installed(cur, schema)
            cron_db = cron_database(cur)
            database = _current_database(cur)
        if cron_db is None:
            raise _unavailable()
        with cron_connection(dsn, conn, cron_db) as cconn, _transaction(cconn) as ccur:
            _require_pg_cron(ccur, cron_db)
            job = _job(ccur, job_name(database, schema), database)
            if job is not None:
                ccur.execute("SELECT cron.unschedule(%s::bigint)", (job.jobid,))
    return job


def cron_status(dsn: str | None, conn: psycopg.Connection, schema: str,
                cron_conn: psycopg.Connection | None = None) -> CronStatus:
    """pg_cron and the job, read from pg_cron's database: through *cron_conn*
    when given, else through *conn* when it is that database, else through a
    connection to it made from *dsn* (its database name replaced). With none
    of these, a job in another database cannot be read."""
    try:
        with _transaction(conn) as cur:
            cron_db = cron_database(cur)
            database = _current_database(cur)
    except errors.PermissionDenied as exc:
        return CronStatus(True, None, problem=str(exc))
    if cron_db is None:
        return CronStatus(available=False)
    name = job_name(database, schema)
    try:
        if cron_conn is not None or cron_db == database:
            target = cron_conn if cron_conn is not None else conn
            return _read_cron(target, cron_db, name, database)
        if dsn is None:
            return CronStatus(True, cron_db, problem=f"pg_cron lives in database {cron_db!r}")
        with cron_connection(dsn, conn, cron_db) as cconn:
            if cconn is not conn:
                cconn.read_only = True  # opened to read the job, nothing more
            return _read_cron(cconn, cron_db, name, database)
    except errors.AuditsqlError as exc:
        return CronStatus(True, cron_db, problem=str(exc))


def _read_cron(conn: psycopg.Connection, cron_db: str, name: str, database: str) -> CronStatus:
    with _transaction(conn) as cur:
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
        row = cur.fetchone()
        if not row or not row[0]:
            return CronStatus(True, cron_db, installed=False)
        job = _job(cur, name, database)
        runs = _runs(cur, job.jobid) if job else []
        if job is None and not _sees_every_job(cur):
            return CronStatus(True, cron_db, True, problem=(
                f"pg_cron shows role {conn.info.user} only the jobs it scheduled itself, and "
                f"none of them is {name!r}; check as a superuser"))
    return CronStatus(True, cron_db, True, job, runs)


def _sees_every_job(cur: psycopg.Cursor) -> bool:
    """Whether row-level security lets the role see every pg_cron job
    (pg_cron shows other roles only their own)."""
    cur.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------
# Status and health
# --------------------------------------------------------------------------

_PARTITIONS = """
WITH p AS (SELECT name, range_from, range_to FROM {s}.event_partitions() WHERE NOT is_default),
m AS (SELECT g AS i,
             (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g)) AT TIME ZONE 'UTC' AS lo,
             (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g + 1)) AT TIME ZONE 'UTC' AS hi
      FROM generate_series(0, {limit}) AS g),
covered AS (SELECT min(m.i) FILTER (WHERE NOT EXISTS (
                SELECT FROM p WHERE p.range_from <= m.lo AND p.range_to >= m.hi)) AS first_gap
            FROM m)
SELECT (SELECT count(*) FROM p),
       (SELECT name FROM p ORDER BY range_from LIMIT 1),
       (SELECT name FROM p ORDER BY range_to DESC LIMIT 1),
       coalesce(first_gap, {limit} + 1),
       NOT EXISTS (SELECT FROM {s}.events_default)
FROM covered
"""


def partitions(cur: psycopg.Cursor, schema: str) -> Partitions:
    """Partition facts: how many, months covered ahead, the default partition."""
    cur.execute(
        sql.SQL(_PARTITIONS).format(s=sql.Identifier(schema), limit=sql.Literal(MAX_MONTHS_AHEAD + 1))
    )
    row = cur.fetchone()
    assert row is not None
    count, oldest, newest, first_gap, default_empty = row
    return Partitions(
        int(count), oldest, newest, first_gap > 0, max(int(first_gap) - 1, 0), bool(default_empty)
    )


def oldest_event(cur: psycopg.Cursor, schema: str) -> datetime | None:
    """occurred_at of the oldest event: the default partition, then the
    partitions from the oldest, stopping at the first that holds events (each
    read through the log with its range, so only that partition is scanned)."""
    ident = sql.Identifier(schema)
    cur.execute(sql.SQL("SELECT min(occurred_at) FROM {}.events_default").format(ident))
    row = cur.fetchone()
    found = row[0] if row else None
    cur.execute(
        sql.SQL(
            "SELECT range_from, range_to FROM {}.event_partitions() WHERE NOT is_default"
            " ORDER BY range_from"
        ).format(ident)
    )
    for lo, hi in cur.fetchall():
        if found is not None and found < lo:
            break
        cur.execute(
            sql.SQL(
                "SELECT min(occurred_at) FROM {}.events WHERE occurred_at >= %s AND occurred_at < %s"
            ).format(ident),
            (lo, hi),
        )
        row = cur.fetchone()
        if row and row[0] is not None:
            return row[0] if found is None else min(found, row[0])
    return found


def next_due(cur: psycopg.Cursor, schema: str) -> Due | None:
    """The oldest monthly partition and when the policy makes it due."""
    cur.execute(
        sql.SQL(
            "SELECT p.name, p.range_from, p.range_to,"
            " ((p.range_to AT TIME ZONE 'UTC') + r.keep) AT TIME ZONE 'UTC'"
            " FROM {s}.event_partitions() AS p CROSS JOIN {s}.retention AS r"
            " WHERE NOT p.is_default AND isfinite(p.range_to) ORDER BY p.range_from LIMIT 1"
        ).format(s=sql.Identifier(schema))
    )
    row = cur.fetchone()
    return Due(*row) if row else None


def status(dsn: str, schema: str) -> RetentionStatus:
    """The policy, holds, partitions, oldest event, and the pg_cron job."""
    with db.connect(dsn) as conn:
        with _transaction(conn) as cur:
            _require(cur, schema)
            found = RetentionStatus(
                schema=schema,
                policy=policy(cur, schema),
                holds=holds(cur, schema),
                partitions=partitions(cur, schema),
                oldest_event=oldest_event(cur, schema),
                next_due=next_due(cur, schema),
                cron=CronStatus(False),
            )
        cron = cron_status(dsn, conn, schema)
    return replace(found, cron=cron)


def health(conn: psycopg.Connection, schema: str,
           cron_conn: psycopg.Connection | None = None,
           dsn: str | None = None) -> RetentionHealth:
    """The facts behind the retention checks: partitions ahead, the default
    partition empty, a policy set, and the job scheduled when pg_cron is
    present. When pg_cron lives in another database, the job is read there
    through *cron_conn*, or through a connection made from *dsn* (see
    :func:`cron_status`); with neither, ``job_scheduled`` is None."""
    with _transaction(conn) as cur:
        _require(cur, schema)
        parts = partitions(cur, schema)
        found = policy(cur, schema)
    cron = cron_status(dsn, conn, schema, cron_conn)
    if not cron.available or cron.problem is not None:
        scheduled = None
    else:
        scheduled = cron.job is not None and cron.job.active
    return RetentionHealth(
        current_month_covered=parts.current_month_covered,
        months_ahead=parts.months_ahead,
        default_partition_empty=parts.default_partition_empty,
        policy=found,
        pg_cron_available=cron.available,
        job_scheduled=scheduled,
        cron_problem=cron.problem,
    )
