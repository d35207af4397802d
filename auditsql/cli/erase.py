"""`auditsql erase`."""

from __future__ import annotations

from typing import Annotated

import typer

from auditsql import errors
from auditsql.audit import Audit
from auditsql.cli.options import Dsn, Schema
from auditsql.cli.output import err, out, reported


def erase(
    entity_type: Annotated[
        str,
        typer.Argument(help="Entity type as in events.entity_type, e.g. public.users.",
                       show_default=False),
    ],
    dsn: Dsn,
    entity_id: Annotated[
        str | None,
        typer.Argument(help="Entity id as in events.entity_id (42, or [7, \"b\"]); "
                            "omitted with --all.", show_default=False),
    ] = None,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why, for the record (1-1000 characters).",
                     show_default=False),
    ] = "",
    column: Annotated[
        list[str] | None,
        typer.Option("--column", metavar="COLUMN",
                     help="A column whose values to erase; repeat for several.",
                     show_default=False),
    ] = None,
    all_columns: Annotated[
        bool,
        typer.Option("--all-columns", help="Erase every column but the key instead."),
    ] = False,
    every_entity: Annotated[
        bool,
        typer.Option("--all", help="Erase from the events of every entity of the type, "
                                   "instead of one (a column erased throughout)."),
    ] = False,
    schema: Schema = "audit",
) -> None:
    """Erase values from past events: a person's data, or a column that
    should have been redacted from the start.

    The values become '\\[erased]' in before and after; the events, their
    times and actors stay. Refused for an entity under legal hold. Only audit
    administrators (auditsql_admin) may; each erasure is recorded as an
    `erased` event naming what, why and who.
    """
    with reported():
        if (entity_id is None) == (not every_entity):
            raise errors.InvalidValue("name one entity id, or give --all for every entity")
        if bool(column) == all_columns:
            raise errors.InvalidValue("name the columns with --column, or give --all-columns")
        with Audit(dsn, schema=schema) as audit:
            count = audit.erase(entity_type, entity_id, reason=reason,
                                columns=None if all_columns else list(column or []))
    out.print(str(count), markup=False)
    err.print(f"erased values from {count} event{'s' if count != 1 else ''} of {entity_type}"
              + (f" {entity_id}" if entity_id is not None else ""), markup=False)
