"""`auditsql snapshot`: record the rows audited tables already have, in
committed batches (docs/reading.md#baseline); also behind `attach --baseline`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from auditsql.audit import Audit
from auditsql.cli.options import Dsn, Json, Schema, Tables
from auditsql.cli.output import err, reported
from auditsql.reading import DEFAULT_BATCH_SIZE, check_batch_size
from auditsql.reading import Progress as RowsSoFar

# One table's progress callback, from its name (None: nothing shown).
Track = Callable[[str], RowsSoFar | None]

BatchSize = Annotated[
    int | None,
    typer.Option("--batch-size", metavar="N", show_default=False,
                 help=f"Rows per committed batch (default {DEFAULT_BATCH_SIZE}): a writer "
                 "waits for one batch at most."),
]


def snapshot(
    tables: Tables,
    dsn: Dsn,
    schema: Schema = "audit",
    batch_size: BatchSize = None,
    as_json: Json = False,
) -> None:
    """Record every row of audited tables as a snapshot event.

    Gives the log the rows a table had before it was attached, so that
    row_at and table_at know rows nobody has written since. One committed
    batch at a time, in key order, locking only the batch's rows; writers
    go on meanwhile and are captured as usual. Every table named must exist
    and be audited before any is read. Run by each table's owner, a member
    of the operator role. Progress on stderr on a terminal; the rows
    recorded per table on stdout.
    """
    with reported():
        size = check_batch_size(DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        with Audit(dsn, schema=schema) as audit:
            recorded = take(audit, audit.require_audited(*tables), size)
    print_recorded(recorded, as_json=as_json)


def take(audit: Audit, names: list[str], batch_size: int) -> dict[str, int]:
    """Snapshot each table in turn; the rows recorded, by table. Shows
    progress on stderr when it is a terminal."""
    recorded: dict[str, int] = {}
    with _progress() as shown:
        for name in names:
            recorded[name] = audit.snapshot(name, batch_size, shown(name))
    return recorded


def print_recorded(recorded: dict[str, int], *, as_json: bool = False) -> None:
    """The rows recorded per table, on stdout."""
    if as_json:
        print(json.dumps({"tables": [{"table": name, "recorded": rows}
                                     for name, rows in recorded.items()]}, indent=2))
        return
    for name, rows in recorded.items():
        print(f"recorded {rows} {'row' if rows == 1 else 'rows'} of {name}")


@contextmanager
def _progress() -> Iterator[Track]:
    """Progress callbacks, one per table: a line each on stderr on a
    terminal, nothing otherwise."""
    if not err.is_terminal:
        yield lambda name: None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                  TextColumn("{task.completed} rows"), TimeElapsedColumn(),
                  console=err) as bar:
        def track(name: str) -> RowsSoFar:
            task = bar.add_task(f"snapshot of {name}", total=None)
            return lambda rows: bar.update(task, completed=rows)
        yield track
