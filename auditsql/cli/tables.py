"""`auditsql attach` and `auditsql detach`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from auditsql import db, errors, installer
from auditsql.cli.options import Dsn, Schema, Tables
from auditsql.cli.output import err, reported
from auditsql.render import Settings


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
    strict: Annotated[
        bool | None,
        typer.Option("--strict/--no-strict",
                     help="Refuse writes to the table that have no actor in context.",
                     show_default=False),
    ] = None,
    clear_policies: Annotated[
        bool,
        typer.Option("--clear-policies",
                     help="Drop the table's column policies and strictness first; the other "
                     "policy options then apply. Without it, policies not named are kept."),
    ] = False,
) -> None:
    """Start auditing tables. Safe to run again; all tables or none.

    Needs membership in the operator role (auditsql_operator) and ownership
    of the tables; no right over the log.

    Column policies (--exclude, --redact, --on-change, --strict) apply to every
    table named; each one given replaces what the table had, the others stay.
    """
    with reported():
        if primary_key and id_columns is not None:
            raise errors.InvalidValue("--primary-key and --id-columns exclude each other")
        columns = [] if primary_key else installer.parse_id_columns(id_columns)
        mode = capture.value if capture is not None else None
        cleared = installer.Policies([], [], {}, False) if clear_policies else installer.Policies()
        policies = installer.Policies(
            exclude=exclude if exclude else cleared.exclude,
            redact=redact if redact else cleared.redact,
            on_change=installer.parse_on_change(on_change) or cleared.on_change,
            strict=strict if strict is not None else cleared.strict,
            trust_id_columns=True if trust_id_columns else None,
        )
        with db.connect(dsn) as conn:
            done = installer.attach(conn, tables, Settings(schema=schema), columns, mode,
                                     policies)
    for name in done.names:
        err.print(f"attached {name}", markup=False)
    for warning in done.warnings:
        err.print(f"warning: {warning}", markup=False)


def detach(tables: Tables, dsn: Dsn, schema: Schema = "audit") -> None:
    """Stop auditing tables. Their events stay in the log; all tables or none."""
    with reported(), db.connect(dsn) as conn:
        done = installer.detach(conn, tables, Settings(schema=schema))
    for name in done.names:
        err.print(f"detached {name}", markup=False)
