"""pg_cron: the job that runs maintenance and retention. pg_cron lives in
one database of the server (``cron.database_name``), which may be another
than the audited one: the job is then made and read there, through a
connection opened from the same DSN with that database's name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from auditsql import catalog, db, errors, retention

DEFAULT_CRON = "17 3 * * *"
MAX_CRON = 200
RECENT_RUNS = 5


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

    @property
    def scheduled(self) -> bool | None:
        """Whether the job is there and active; None when pg_cron is absent
        or the job could not be read."""
        if not self.available or self.problem is not None:
            return None
        return self.job is not None and self.job.active


_FIELD = re.compile(r"[0-9A-Za-z*,/$-]+")
_FORMS = (
    re.compile(r"@[a-z]+"),  # @daily, @hourly, ... (pg_cron decides which it knows)
    re.compile(r"[1-9][0-9]? seconds"),  # pg_cron 1.5 and later
)


def validate_schedule(schedule: str) -> None:
    """InvalidValue unless ``schedule`` has the shape of a pg_cron schedule:
    five fields of digits, names, ``* , / - $``, an @-shortcut, or 'N
    seconds'. pg_cron judges the values (61 minutes, unknown names)."""
    if "\x00" in schedule:
        raise errors.InvalidValue("the schedule may not contain NUL characters")
    if len(schedule) > MAX_CRON:
        raise errors.InvalidValue(f"the schedule may be at most {MAX_CRON} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in schedule):
        raise errors.InvalidValue("the schedule may not contain control characters")
    fields = schedule.split()
    if len(fields) == 5 and " ".join(fields) == schedule.strip() and all(
            _FIELD.fullmatch(f) for f in fields):
        return
    if any(form.fullmatch(schedule.strip()) for form in _FORMS):
        return
    raise errors.InvalidValue(
        f"invalid schedule {schedule!r}: expected five cron fields, such as '{DEFAULT_CRON}'")




def database(cur: psycopg.Cursor) -> str | None:
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
        "lives is unknown; connect as a superuser or a member of pg_read_all_settings")


def job_name(database: str, schema: str) -> str:
    """The name of the job for one installation (one database and schema)."""
    return f"auditsql:{database}:{schema}"


def job_command(schema: str, months_ahead: int = retention.DEFAULT_MONTHS_AHEAD) -> str:
    """The job's SQL: sealing, maintenance and retention, each in its own
    transaction, so that one's locks are gone before the other takes its
    own. Sealing goes first: retention failing must not keep events
    unsealed, and what retention drops is sealed before (docs/integrity.md)."""
    retention.validate_months_ahead(months_ahead)
    return sql.SQL(
        "BEGIN; SELECT {s}.seal(); COMMIT;"
        " BEGIN; SELECT {s}.maintain({n}); COMMIT; BEGIN; SELECT {s}.apply_retention(); COMMIT;"
    ).format(s=sql.Identifier(schema), n=sql.Literal(months_ahead)).as_string(None)


@contextmanager
def connection(dsn: str | None, conn: psycopg.Connection, cron_db: str, target: str, *,
               read_only: bool = False) -> Iterator[psycopg.Connection]:
    """A connection to pg_cron's database: ``conn`` itself when it is that
    database (``target``), else one opened from ``dsn`` with its name
    replaced."""
    if cron_db == target:
        yield conn
        return
    if dsn is None:
        raise errors.PgCronUnavailable(
            f"pg_cron lives in database {cron_db!r}, and no DSN was given to reach it")
    with db.connect(make_conninfo(dsn, dbname=cron_db)) as other:
        other.read_only = read_only
        yield other


def _current_database(cur: psycopg.Cursor) -> str:
    """The database connected to, as the server names it: pg_cron's jobs
    name it so (a pooler's client-side name for it may differ)."""
    cur.execute("SELECT current_database()")
    row = cur.fetchone()
    assert row is not None
    return str(row[0])


def _require_pg_cron(cur: psycopg.Cursor, cron_db: str) -> None:
    cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
    row = cur.fetchone()
    if not row or not row[0]:
        raise errors.PgCronUnavailable(
            f"pg_cron is loaded but not created in database {cron_db!r} "
            "(cron.database_name); a superuser must run CREATE EXTENSION pg_cron there")


def _unavailable() -> errors.PgCronUnavailable:
    return errors.PgCronUnavailable(
        "pg_cron is not available on this server (it is not in shared_preload_libraries); "
        "schedule `auditsql retention run --dsn ...` with cron, systemd or your job runner instead")


def _job(cur: psycopg.Cursor, name: str, target: str) -> CronJob | None:
    cur.execute("SELECT jobid, jobname, schedule, command, database, username, active"
                " FROM cron.job WHERE jobname = %s AND database = %s ORDER BY jobid LIMIT 1",
                (name, target))
    row = cur.fetchone()
    return CronJob(*row) if row else None


def _runs(cur: psycopg.Cursor, jobid: int, limit: int = RECENT_RUNS) -> list[CronRun]:
    cur.execute("SELECT runid, status, return_message, start_time, end_time"
                " FROM cron.job_run_details WHERE jobid = %s"
                " ORDER BY start_time DESC NULLS LAST, runid DESC LIMIT %s", (jobid, limit))
    return [CronRun(*row) for row in cur.fetchall()]


def schedule(conn: psycopg.Connection, schema: str, cron: str = DEFAULT_CRON,
             months_ahead: int = retention.DEFAULT_MONTHS_AHEAD, *,
             dsn: str | None = None) -> CronJob:
    """Schedule maintenance and retention with pg_cron; scheduling again
    replaces the schedule. The job runs as the connected role, which must be
    an audit administrator."""
    validate_schedule(cron)
    retention.validate_months_ahead(months_ahead)
    with db.transaction(conn) as cur:
        installed = catalog.installation(cur, schema)
        cron_db = database(cur)
        if cron_db is None:
            raise _unavailable()
        if retention.policy(cur, schema) is None:
            raise errors.NoPolicy("no retention policy is set; run `auditsql retention set"
                                  " POLICY` before scheduling retention")
        admin = installed.settings.admin
        cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (admin,))
        row = cur.fetchone()
        if not row or not row[0]:
            raise errors.PermissionDenied(
                f"role {conn.info.user} may not schedule retention: the job runs as the role"
                f" that schedules it, which must be a member of {admin}")
        target = _current_database(cur)
    name = job_name(target, schema)
    with connection(dsn, conn, cron_db, target) as cconn, db.transaction(cconn) as ccur:
        _require_pg_cron(ccur, cron_db)
        try:
            with cconn.transaction():
                if cron_db == target:
                    ccur.execute("SELECT cron.schedule(%s, %s, %s)",
                                 (name, cron, job_command(schema, months_ahead)))
                else:
                    ccur.execute("SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                                 (name, cron, job_command(schema, months_ahead), target))
        except psycopg.Error as exc:
            message = str(db.translate(exc))
            if message.startswith("invalid schedule"):
                raise errors.InvalidValue(
                    f"{message}: expected five cron fields, such as '{DEFAULT_CRON}'") from exc
            raise db.translate(exc) from exc
        job = _job(ccur, name, target)
    assert job is not None
    return job


def unschedule(conn: psycopg.Connection, schema: str, *, dsn: str | None = None) -> CronJob | None:
    """Remove the job; returns it, or None when there was none."""
    with db.transaction(conn) as cur:
        catalog.require_installed(cur, schema)
        cron_db = database(cur)
        target = _current_database(cur)
    if cron_db is None:
        raise _unavailable()
    with connection(dsn, conn, cron_db, target) as cconn, db.transaction(cconn) as ccur:
        _require_pg_cron(ccur, cron_db)
        job = _job(ccur, job_name(target, schema), target)
        if job is not None:
            ccur.execute("SELECT cron.unschedule(%s::bigint)", (job.jobid,))
    return job


def status(conn: psycopg.Connection, schema: str, *, dsn: str | None = None,
           cron_conn: psycopg.Connection | None = None) -> CronStatus:
    """pg_cron and the job, read in pg_cron's database: through ``cron_conn``
    when given, else through ``conn`` when it is that database, else through
    a read-only connection opened from ``dsn``. Never raises for pg_cron's
    sake: what cannot be read is said in ``problem``."""
    try:
        with db.transaction(conn) as cur:
            target = _current_database(cur)
            cron_db = database(cur)
    except errors.PermissionDenied as exc:
        return CronStatus(True, None, problem=str(exc))
    if cron_db is None:
        return CronStatus(available=False)
    name = job_name(target, schema)
    try:
        if cron_conn is not None:
            return _read(cron_conn, cron_db, name, target)
        with connection(dsn, conn, cron_db, target, read_only=True) as cconn:
            return _read(cconn, cron_db, name, target)
    except errors.AuditsqlError as exc:
        return CronStatus(True, cron_db, problem=str(exc))


def _read(conn: psycopg.Connection, cron_db: str, name: str, target: str) -> CronStatus:
    with db.transaction(conn) as cur:
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
        row = cur.fetchone()
        if not row or not row[0]:
            return CronStatus(True, cron_db, installed=False)
        job = _job(cur, name, target)
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
