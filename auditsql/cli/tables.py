"""`auditsql attach` and `auditsql detach`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from auditsql import db, installer
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
            help="Comma-separated columns that identify a row, for tables without a primary key.",
        ),
    ] = None,
    capture: Annotated[
        Capture | None,
        typer.Option(
            "--capture",
            help="row: a row trigger, cheapest for OLTP (the default for a new table). "
            "statement: statement triggers over transition tables, cheapest for bulk writes; "
            "not for partitioned tables. Omitted: keep the table's current mode.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start auditing tables. Safe to run again; all tables or none."""
    with reported():
        columns = installer.parse_id_columns(id_columns)
        mode = capture.value if capture is not None else None
        with db.connect(dsn) as conn:
            names = installer.attach(conn, tables, Settings(schema=schema), columns, mode)
    for name in names:
        err.print(f"attached {name}", markup=False)


def detach(tables: Tables, dsn: Dsn, schema: Schema = "audit") -> None:
    """Stop auditing tables. Their events stay in the log; all tables or none."""
    with reported(), db.connect(dsn) as conn:
        names = installer.detach(conn, tables, Settings(schema=schema))
    for name in names:
        err.print(f"detached {name}", markup=False)
