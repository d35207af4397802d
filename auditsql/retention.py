"""Retention: the policy, and the runs of maintenance and retention
(``set_retention``, ``maintain``, ``apply_retention`` and what judges and
previews them: ``retention_change``, ``retention_preview``,
``maintain_preview``; docs/retention.md). Legal holds are in
:mod:`auditsql.holds`, pg_cron in :mod:`auditsql.cron`, the partitions' facts
in :mod:`auditsql.partitions`. Functions that change something run in one
transaction each, except :func:`run`, which runs maintenance and retention
in two, as the scheduled job does; :func:`preview` and :func:`dry_run` read
in one read-only transaction.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from auditsql import catalog, db, errors
from auditsql.partitions import MAX_MONTHS_AHEAD

POLICIES = {"financial": "7 years", "medical": "5 years", "saas": "3 years"}
DEFAULT_MONTHS_AHEAD = 3
MAX_POLICY = 100

# apply_retention raises object_not_in_prerequisite_state when no policy is set.
_ERRORS: db.Errors = {pgerrors.ObjectNotInPrerequisiteState: errors.NoPolicy}


@dataclass(frozen=True)
class Policy:
    """The retention policy in force."""

    name: str  # financial | medical | saas | custom
    keep: str  # the interval, as PostgreSQL writes it: '7 years'
    set_at: datetime
    set_by: str


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


def validate_months_ahead(months_ahead: int) -> None:
    """InvalidValue unless 0 <= months_ahead <= 120."""
    if not 0 <= months_ahead <= MAX_MONTHS_AHEAD:
        raise errors.InvalidValue(
            f"months ahead must be between 0 and {MAX_MONTHS_AHEAD}, not {months_ahead}")


def validate_policy_text(value: str) -> None:
    """InvalidValue for a policy no server could accept (the server checks the rest)."""
    if "\x00" in value:
        raise errors.InvalidValue("the retention policy may not contain NUL characters")
    if len(value) > MAX_POLICY:
        raise errors.InvalidValue(f"the retention policy may be at most {MAX_POLICY} characters")


def policy(cur: psycopg.Cursor, schema: str) -> Policy | None:
    """The retention policy in force, or None."""
    cur.execute(sql.SQL("SELECT policy, keep::text, set_at, set_by FROM {}.retention")
                .format(sql.Identifier(schema)))
    row = cur.fetchone()
    return Policy(*row) if row else None


def set_policy(conn: psycopg.Connection, schema: str, value: str, *,
               under_a_year: bool = False, shorten: bool = False) -> PolicySet:
    """Set the retention policy: financial, medical, saas, or an interval
    with its units. A policy keeping events for less than a year needs
    *under_a_year*, one keeping them for less time than the policy in force
    needs *shorten*; without, PolicyRefused says what the next retention run
    would then remove (and so does the result, once set)."""
    with db.transaction(conn, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        return _set_policy(cur, schema, value, under_a_year, shorten, during_install=False)


def set_policy_in(cur: psycopg.Cursor, schema: str, value: str) -> PolicySet:
    """Set the retention policy inside the caller's transaction (install
    uses it). Neither a policy under a year nor a shorter one than the
    policy in force is set this way: the refusal says to install without
    the policy and then run `auditsql retention set` with the flag."""
    return _set_policy(cur, schema, value, False, False, during_install=True)


def _set_policy(cur: psycopg.Cursor, schema: str, value: str, under_a_year: bool,
                shorten: bool, *, during_install: bool) -> PolicySet:
    validate_policy_text(value)
    ident = sql.Identifier(schema)
    try:
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
            db.call(schema, "set_retention", sql.Placeholder(), sql.Placeholder(), sql.Placeholder()),
            (value, under_a_year, shorten),
        )
    except psycopg.Error as exc:
        raise db.translate(exc, _ERRORS) from exc
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


def maintain(conn: psycopg.Connection, schema: str,
             months_ahead: int = DEFAULT_MONTHS_AHEAD) -> list[Moved]:
    """Create partitions ahead and move rows out of the default partition."""
    validate_months_ahead(months_ahead)
    with db.transaction(conn, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        cur.execute(db.call(schema, "maintain", sql.Literal(months_ahead)))
        return [Moved(*row) for row in cur.fetchall()]


def apply(conn: psycopg.Connection, schema: str, as_of: datetime | None = None) -> list[Removed]:
    """Remove the partitions the policy no longer keeps (as of now, or *as_of*)."""
    with db.transaction(conn, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        args = [sql.Placeholder()] if as_of is not None else []
        cur.execute(db.call(schema, "apply_retention", *args), [as_of] if as_of else None)
        return [Removed(*row) for row in cur.fetchall()]


def require_policy(conn: psycopg.Connection, schema: str) -> Policy:
    """The policy in force, or NoPolicy saying how to set one."""
    with db.transaction(conn, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        found = policy(cur, schema)
    if found is None:
        raise errors.NoPolicy("no retention policy is set, so nothing can be removed; "
                              "run `auditsql retention set POLICY` first")
    return found


def run(conn: psycopg.Connection, schema: str,
        months_ahead: int = DEFAULT_MONTHS_AHEAD) -> RunResult:
    """Maintenance, then retention, each in its own transaction (as the job).
    Nothing at all is done when no policy is set."""
    validate_months_ahead(months_ahead)
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


def preview(conn: psycopg.Connection, schema: str, keep: str | None = None) -> list[Removed]:
    """What the next retention run (maintenance, then retention) would
    remove under the policy in force, or keeping events for *keep*, as one
    row per partition. Changes nothing."""
    with db.transaction(conn, read_only=True, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        return _preview(cur, schema, keep)


def dry_run(conn: psycopg.Connection, schema: str,
            months_ahead: int = DEFAULT_MONTHS_AHEAD) -> RunResult:
    """What :func:`run` would do now: the partitions maintenance would
    create (with the events it would move into them) and those retention
    would then remove. One read-only transaction: nothing changes, nothing
    is recorded. NoPolicy when no policy is set, as for run."""
    validate_months_ahead(months_ahead)
    require_policy(conn, schema)
    with db.transaction(conn, read_only=True, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        cur.execute(db.call(schema, "maintain_preview", sql.Literal(months_ahead)))
        maintained = [Moved(*row) for row in cur.fetchall()]
        return RunResult(maintained, _preview(cur, schema, None))



