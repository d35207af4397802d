"""`auditsql retention ...`: the policy, legal holds, maintenance and pg_cron."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Annotated, Any

import typer

from auditsql import errors, retention
from auditsql.audit import Audit
from auditsql.cron import DEFAULT_CRON
from auditsql.retention import DEFAULT_MONTHS_AHEAD
from auditsql.cli.options import Dsn, Json, Schema
from auditsql.cli.output import err, reported

app = typer.Typer(
    name="retention",
    help="Retention policy, legal holds, partition maintenance and its schedule.",
    no_args_is_help=True,
)

EntityType = Annotated[
    str,
    typer.Argument(
        help="Entity type as in events.entity_type: the schema-qualified table, e.g. public.orders.",
        show_default=False,
    ),
]
EntityId = Annotated[
    str,
    typer.Argument(
        help="Entity id as in events.entity_id: 1001, or [7, \"b\"] for a composite key.",
        show_default=False,
    ),
]
MonthsAhead = Annotated[
    int,
    typer.Option(
        "--months-ahead",
        help="Keep partitions for the current month and this many months after it (0-120).",
    ),
]


def _when(value: datetime | None) -> str:
    """A time in UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(value: datetime) -> str:
    """A partition bound: the UTC date."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _jsonable(value: Any) -> Any:
    """Dataclass dicts with times as ISO 8601 strings."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), indent=2))


def _print_removals(removes: list[retention.Removed], verb: str = "would remove") -> None:
    """One line per partition a retention run removes (or rebuilds), on stdout."""
    for r in removes:
        kept = f", {r.rows_kept} kept under legal hold" if r.rows_kept else ""
        print(f"{verb}\t{r.partition}\t{_day(r.range_from)}..{_day(r.range_to)}"
              f"\t{r.rows_removed} events{kept}", flush=True)


@app.command("set")
def set_policy(
    policy: Annotated[
        str,
        typer.Argument(
            help="financial (7 years), medical (5 years), saas (3 years), "
            "or an interval with its units such as '2 years' (at most 100 years).",
            show_default=False,
        ),
    ],
    dsn: Dsn,
    under_a_year: Annotated[
        bool,
        typer.Option("--under-a-year",
                     help="Allow a policy that keeps events for less than a year."),
    ] = False,
    shorten: Annotated[
        bool,
        typer.Option("--shorten",
                     help="Allow a policy that keeps events for less time than the one in force."),
    ] = False,
    schema: Schema = "audit",
) -> None:
    """Set how long events are kept. Recorded in the log; safe to run again.

    A number needs its unit ('7 years', not '7'). A policy keeping events for
    less than a year, or for less time than the policy in force, is refused
    unless --under-a-year or --shorten says it is meant. Either way, the
    partitions the next retention run would then remove are listed on
    stdout, with their events and those kept under legal hold.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        try:
            done = audit.set_retention(policy, under_a_year=under_a_year, shorten=shorten)
        except errors.PolicyRefused as exc:
            _print_removals([r for r in exc.removes if isinstance(r, retention.Removed)])
            raise
    found = done.policy
    if not done.changed:
        err.print(f"retention policy: {found.name} (keep {found.keep}), unchanged", markup=False)
        return
    _print_removals(done.removes)
    err.print(f"retention policy: {found.name} (keep {found.keep}); the next retention run"
              f" will remove {retention.summarize(done.removes)}", markup=False)


@app.command()
def status(dsn: Dsn, schema: Schema = "audit", as_json: Json = False) -> None:
    """Show the policy, holds, partitions, oldest event and the pg_cron job.

    The job is shown with its schedule and its last runs from
    cron.job_run_details.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        found = audit.retention_status()
    if as_json:
        _print_json(asdict(found))
        return
    policy = found.policy
    print(
        f"policy: {policy.name} (keep {policy.keep}), set {_when(policy.set_at)} by {policy.set_by}"
        if policy
        else "policy: none set; run `auditsql retention set POLICY`"
    )
    print(f"legal holds: {len(found.holds)}")
    for hold in found.holds:
        print(f"  {hold.entity_type} {hold.entity_id}: since {_when(hold.placed_at)}"
              f" by {hold.placed_by}: {hold.reason}")
    parts = found.partitions
    ahead = (f"{parts.months_ahead} month(s) ahead of the current one"
             if parts.current_month_covered else "none for the current month")
    print(f"partitions: {parts.count} ({parts.oldest or '-'} .. {parts.newest or '-'}); {ahead}")
    print(f"default partition: {'empty' if parts.default_partition_empty else 'holds events'}")
    print(f"oldest event: {_when(found.oldest_event)}")
    if found.next_due is not None:
        print(f"next removal: {found.next_due.partition} on {_when(found.next_due.due_at)}")
    cron = found.cron
    if not cron.available:
        print("pg_cron: not available on this server; run `auditsql retention run` from a scheduler")
    elif cron.problem:
        where = f"in database {cron.database}; " if cron.database else ""
        print(f"pg_cron: {where}job unknown: {cron.problem}")
    elif not cron.installed:
        print(f"pg_cron: loaded, but not created in database {cron.database}")
    elif cron.job is None:
        print(f"pg_cron: in database {cron.database}; no job; run `auditsql retention schedule`")
    else:
        job = cron.job
        # The job is kept in pg_cron's database and runs in the audited one.
        print(f"pg_cron: in database {cron.database}; job {job.jobid} {job.name!r} runs in"
              f" database {job.database}, schedule '{job.schedule}',"
              f" {'active' if job.active else 'inactive'}, as {job.username}")
        print(f"  command: {job.command}")
        print(f"last runs: {len(cron.runs) or 'none yet'}")
        for r in cron.runs:
            message = " ".join((r.return_message or "").split())
            print(f"  {_when(r.start_time)}  {r.status}  {message}")


@app.command()
def hold(
    entity_type: EntityType,
    entity_id: EntityId,
    dsn: Dsn,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why the entity is held (1-1000 characters); recorded."),
    ],
    future: Annotated[
        bool,
        typer.Option("--future",
                     help="Hold an entity with no event in the log yet: its future events."),
    ] = False,
    schema: Schema = "audit",
) -> None:
    """Put an entity under legal hold: retention keeps its events.

    The id is read as the log spells it: [1001,1] holds the events of
    [1001, 1]. A hold matching no event in the log is refused unless
    --future. Recorded in the log. Holding an entity again changes nothing.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        done = audit.hold(entity_type, entity_id, reason, future=future)
    found = done.hold
    given = f" (given as {entity_id})" if found.entity_id != entity_id else ""
    events = (f"{done.events} events in the log" if done.events
              else "no event in the log yet: it holds future events")
    if done.placed:
        err.print(f"legal hold placed on {found.entity_type} {found.entity_id}{given}: {events}",
                  markup=False)
    else:
        err.print(f"{found.entity_type} {found.entity_id}{given} is already under legal hold"
                  f" since {_when(found.placed_at)}: {found.reason}", markup=False)


@app.command()
def release(
    entity_type: EntityType,
    entity_id: EntityId,
    dsn: Dsn,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why the hold is lifted (at most 1000 characters); recorded."),
    ] = None,
    schema: Schema = "audit",
) -> None:
    """Lift a legal hold, recorded in the log.

    The entity's events are then removed by the next run that finds them due.
    Releasing an entity that is not held is an error.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        found = audit.release(entity_type, entity_id, reason)
    err.print(f"legal hold released on {found.entity_type} {found.entity_id}", markup=False)


@app.command()
def schedule(
    dsn: Dsn,
    cron: Annotated[
        str,
        typer.Option("--cron", help="When to run, as a pg_cron schedule (UTC)."),
    ] = DEFAULT_CRON,
    months_ahead: MonthsAhead = DEFAULT_MONTHS_AHEAD,
    schema: Schema = "audit",
) -> None:
    """Schedule maintenance and retention with pg_cron.

    The job is created in this database, or through cron.schedule_in_database
    when pg_cron lives in another (cron.database_name). It runs as the
    connected role. Scheduling again replaces the schedule.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        job = audit.schedule(cron, months_ahead)
    err.print(f"scheduled pg_cron job {job.jobid} {job.name!r} ('{job.schedule}')"
              f" for database {job.database}, running as {job.username}", markup=False)


@app.command()
def unschedule(dsn: Dsn, schema: Schema = "audit") -> None:
    """Remove the pg_cron job that `schedule` created."""
    with reported(), Audit(dsn, schema=schema) as audit:
        job = audit.unschedule()
    if job is None:
        err.print("no retention job was scheduled", markup=False)
    else:
        err.print(f"removed pg_cron job {job.jobid} {job.name!r}", markup=False)


@app.command()
def run(
    dsn: Dsn,
    months_ahead: MonthsAhead = DEFAULT_MONTHS_AHEAD,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run",
                     help="Show what maintenance would create and retention would remove;"
                     " change nothing."),
    ] = False,
    schema: Schema = "audit",
    as_json: Json = False,
) -> None:
    """Run maintenance, then retention, now.

    For external schedulers (cron, systemd timers, job runners) where pg_cron
    is not available. Exits 1 when no retention policy is set.
    """
    if dry_run:
        with reported(), Audit(dsn, schema=schema) as audit:
            result = audit.run_retention(months_ahead, dry_run=True)
        if as_json:
            _print_json(asdict(result))
            return
        _print_created(result.maintained, "would create")
        _print_removals(result.removed)
        done = bool(result.maintained or result.removed)
        err.print("dry run: nothing changed" if done else "nothing to do", markup=False)
        return
    if as_json:
        with reported(), Audit(dsn, schema=schema) as audit:
            result = audit.run_retention(months_ahead)
        _print_json(asdict(result))
        return
    with reported(), Audit(dsn, schema=schema) as audit:
        # Step by step, so that what maintenance did is shown even when
        # retention then fails (each step commits on its own).
        retention.validate_months_ahead(months_ahead)
        audit.require_policy()
        maintained = audit.maintain(months_ahead)
        _print_created(maintained, "created")
        removed = audit.apply_retention()
        _print_removals(removed, "removed")
    if not maintained and not removed:
        err.print("nothing to do", markup=False)


def _print_created(maintained: list[retention.Moved], verb: str) -> None:
    """One line per partition maintenance creates, on stdout."""
    what = "moved" if verb == "created" else "to move"
    for m in maintained:
        moved = f"\t{m.rows} events {what} from the default partition" if m.rows else ""
        print(f"{verb}\t{m.partition}\t{_day(m.range_from)}..{_day(m.range_to)}{moved}",
              flush=True)
