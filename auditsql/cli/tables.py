"""`auditsql attach` and `auditsql detach`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from auditsql import errors, installer
from auditsql.audit import Audit
from auditsql.cli import options
from auditsql.cli.options import Dsn, Schema, Tables, NoRequireActor, Strict
from auditsql.cli.output import err, reported
from auditsql.cli.snapshot import BatchSize, print_recorded, take
from auditsql.reading import DEFAULT_BATCH_SIZE, check_batch_size


class Capture(str, Enum):
    """How a table's writes are captured (see `audit.attach` in docs/sql.md)."""

    row = "row"
    statement = "statement"


def attach(
    tables: Tables,
    dsn: Dsn,
    schema: Schema = "audit",
    id_columns: Annotated[
        str | None,
        typer.Option(
            "--id-columns",
            help="Comma-separated columns that identify a row, for tables without a primary key: "
            "NOT NULL and covered by a unique index. Omitted: keep the table's (the primary key "
            "for a new table).",
        ),
    ] = None,
    primary_key: Annotated[
        bool,
        typer.Option("--primary-key",
                     help="Identify rows by the primary key again, instead of --id-columns "
                     "given earlier."),
    ] = False,
    trust_id_columns: Annotated[
        bool,
        typer.Option("--trust-id-columns",
                     help="Accept --id-columns that no unique index over NOT NULL columns "
                     "backs (two rows could then share an entity_id; verify warns)."),
    ] = False,
    capture: Annotated[
        Capture | None,
        typer.Option(
            "--capture",
            metavar="MODE",
            help="row: a row trigger, cheapest for OLTP (the default for a new table). "
            "statement: statement triggers over transition tables, cheapest for bulk writes; "
            "not for partitioned tables. Omitted: keep the table's current mode.",
            show_default=False,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="COLUMN",
                     help="Never store this column; an update that changes nothing else records "
                     "nothing. Repeat for several; replaces the table's list.",
                     show_default=False),
    ] = None,
    redact: Annotated[
        list[str] | None,
        typer.Option("--redact", metavar="COLUMN",
                     help="Store this column as '\\[redacted]'; a change still shows in "
                     "changed_columns. Repeat for several; replaces the table's list.",
                     show_default=False),
    ] = None,
    on_change: Annotated[
        list[str] | None,
        typer.Option("--on-change", metavar="COLUMN=ACTION",
                     help="An update that changes COLUMN also records the auth event ACTION "
                     "(e.g. role=role_changed). Repeat for several; replaces the table's list.",
                     show_default=False),
    ] = None,
    require_actor: Annotated[
        bool | None,
        typer.Option("--require-actor",
                     help="Refuse writes to the table that have no actor in context; "
                     "--no-require-actor lifts it (also spelled --strict/--no-strict).",
                     show_default=False),
    ] = None,
    no_require_actor: NoRequireActor = False,
    strict: Strict = None,
    clear_policies: Annotated[
        bool,
        typer.Option("--clear-policies",
                     help="Drop the table's column policies and --require-actor first; the other "
                     "policy options then apply. Without it, policies not named are kept."),
    ] = False,
    baseline: Annotated[
        bool,
        typer.Option("--baseline",
                     help="Then record every row the tables have as a snapshot event, in "
                     "committed batches (as `auditsql snapshot` does)."),
    ] = False,
    batch_size: BatchSize = None,
) -> None:
    """Start auditing tables. Safe to run again; all tables or none.

    Needs membership in the operator role (auditsql_operator) and ownership
    of the tables; no right over the log.

    Column policies (--exclude, --redact, --on-change, --require-actor)
    apply to every table named; each one given replaces what the table had,
    the others stay.

    With --baseline, the tables are attached in one transaction, then each
    is snapshotted a batch at a time, so that writers wait for one batch at
    most; writes in between are captured. The rows recorded per table go
    to stdout. Should the snapshot stop, the tables stay attached: run
    `auditsql snapshot` for them.
    """
    required = options.require_actor(require_actor, no_require_actor, strict)
    with reported():
        if batch_size is not None and not baseline:
            raise errors.InvalidValue("--batch-size applies only with --baseline")
        size = check_batch_size(DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        if primary_key and id_columns is not None:
            raise errors.InvalidValue("--primary-key and --id-columns exclude each other")
        columns = [] if primary_key else installer.parse_id_columns(id_columns)
        changes = installer.parse_on_change(on_change)
        cleared = clear_policies or None  # each policy not given: cleared, or kept
        with Audit(dsn, schema=schema) as audit:
            done = audit.attach(
                *tables, id_columns=columns,
                capture=capture.value if capture is not None else None,
                exclude=exclude or ([] if cleared else None),
                redact=redact or ([] if cleared else None),
                on_change=changes or ({} if cleared else None),
                require_actor=required if required is not None else False if cleared else None,
                trust_id_columns=trust_id_columns or None,
            )
            for name in done.names:
                err.print(f"attached {name}", markup=False)
            for warning in done.warnings:
                err.print(f"warning: {warning}", markup=False)
            recorded = take(audit, done.names, size) if baseline else None
    if recorded is not None:
        print_recorded(recorded)


def detach(tables: Tables, dsn: Dsn, schema: Schema = "audit") -> None:
    """Stop auditing tables. Their events stay in the log; all tables or none."""
    with reported(), Audit(dsn, schema=schema) as audit:
        done = audit.detach(*tables)
    for name in done.names:
        err.print(f"detached {name}", markup=False)
