"""`auditsql log`, `show`, `history` and `diff`: reading the log."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from auditsql import errors, times
from auditsql.audit import Audit
from auditsql.cli import eventview as view
from auditsql.cli.options import Dsn, Schema
from auditsql.cli.output import out, reported


def log(
    dsn: Dsn,
    table: Annotated[str | None, typer.Option("--table", help="Events of this table.",
                                              show_default=False)] = None,
    entity_id: Annotated[str | None, typer.Option(
        "--id", help="Events of the row with this id (42, or [7, \"b\"]), also under the "
                     "key it had before a key change.", show_default=False)] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Events of this actor id.",
                                              show_default=False)] = None,
    action: Annotated[str | None, typer.Option(
        "--action", help="Events of this action: created, updated, deleted, login...",
        show_default=False)] = None,
    request_id: Annotated[str | None, typer.Option("--request-id", help="Events of this "
                                                   "request.", show_default=False)] = None,
    since: view.Since = None,
    until: view.Until = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events, the "
                                                       "newest.")] = 100,
    tz: view.Tz = None,
    as_json: view.AsJson = False,
    as_csv: view.AsCsv = False,
    schema: Schema = "audit",
) -> None:
    """List events, newest first, matching every filter given.

    Times in filters are ages (7d, 12h, 30m ago), ISO 8601 times, or dates,
    read in --tz. No event matching is no error: nothing is printed.
    """
    with reported():
        style = view.fmt(as_json, as_csv)
        zone = times.zone(tz)
        with Audit(dsn, schema=schema) as audit:
            found = audit.log(table=table, entity_id=entity_id, actor=actor, action=action,
                              request_id=request_id, since=view.when(since, zone),
                              until=view.when(until, zone), limit=limit)
    view.print_events(found, zone, style)


def show(
    event_id: Annotated[str, typer.Argument(help="The event's id.", show_default=False)],
    dsn: Dsn,
    tz: view.Tz = None,
    as_json: view.AsJson = False,
    schema: Schema = "audit",
) -> None:
    """Show one event in full: who, when, where from, and what changed."""
    with reported():
        zone = times.zone(tz)
        number = _event_id(event_id)
        with Audit(dsn, schema=schema) as audit:
            found = audit.event(number)
    data = view.record(found, zone)
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    for key, value in data.items():
        if key in ("before", "after", "changed_columns") or value is None:
            continue
        shown = times.show(found.occurred_at, zone) if key == "occurred_at" else str(value)
        out.print(f"{key}: {shown}", markup=False)
    if found.before is not None or found.after is not None:
        out.print()
        view.print_diffs([found], zone, "text", all_columns=True)


def _event_id(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise errors.InvalidValue(f"invalid event id {text!r}: a positive whole number")
    return int(text)


def history(
    table: view.TableArg,
    entity_id: view.IdArg,
    dsn: Dsn,
    tz: view.Tz = None,
    as_json: view.AsJson = False,
    as_csv: view.AsCsv = False,
    schema: Schema = "audit",
) -> None:
    """The events of one row, oldest first, following its key changes."""
    with reported():
        style = view.fmt(as_json, as_csv)
        zone = times.zone(tz)
        with Audit(dsn, schema=schema) as audit:
            found = audit.history(table, entity_id)
    view.print_events(found, zone, style)


def diff(
    table: view.TableArg,
    entity_id: view.IdArg,
    dsn: Dsn,
    since: view.Since = None,
    until: view.Until = None,
    all_columns: Annotated[bool, typer.Option(
        "--all-columns", help="Show the unchanged columns too.")] = False,
    tz: view.Tz = None,
    as_json: view.AsJson = False,
    schema: Schema = "audit",
) -> None:
    """Each change of one row, oldest first: before and after side by side.

    On a terminal changed values are highlighted; otherwise each changed
    column's line starts with '*', and columns are separated by tabs.
    """
    with reported():
        zone = times.zone(tz)
        with Audit(dsn, schema=schema) as audit:
            start, end = view.when(since, zone), view.when(until, zone)
            found = [e for e in audit.history(table, entity_id) if e.category == "data"
                     and (start is None or e.occurred_at >= start)
                     and (end is None or e.occurred_at < end)]
    view.print_diffs(found, zone,
                     "json" if as_json else "text", all_columns)
