"""Events on stdout: a table on a terminal, tab-separated text otherwise,
JSON lines with --json, CSV with --csv. Times in the zone asked for."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from datetime import datetime, tzinfo
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from auditsql import errors, times
from auditsql.cli.output import err, out
from auditsql.events import COLUMNS, Event

Tz = Annotated[
    str | None,
    typer.Option("--tz", metavar="ZONE", envvar="AUDITSQL_TZ", show_envvar=True,
                 help="Read and show times in this zone (UTC, Europe/Paris); default: "
                      "your own.",
                 show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="CSV with a header line.")]
Since = Annotated[
    str | None,
    typer.Option("--since", metavar="TIME", show_default=False,
                 help="From this time on: 7d, 12h, 30m ago, or 2026-05-01[T12:00[+02:00]].")]
Until = Annotated[
    str | None,
    typer.Option("--until", metavar="TIME", show_default=False,
                 help="Before this time (same forms as --since).")]
TableArg = Annotated[str, typer.Argument(help="The table: orders, public.orders or "
                                              "\"Quoted Name\".", show_default=False)]
IdArg = Annotated[str, typer.Argument(help="The row's id as in events.entity_id: 42, or "
                                           "[7, \"b\"] for a composite key.",
                                      show_default=False)]

# The columns of the terminal table and of tab-separated output.
SHORT = ("id", "occurred_at", "action", "entity_type", "entity_id", "actor_id", "request_id",
         "changes")


def fmt(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise errors.InvalidValue("choose one of --json and --csv")
    return "json" if as_json else "csv" if as_csv else "text"


def when(text: str | None, tz: tzinfo) -> datetime | None:
    return None if text is None else times.parse_time(text, tz)


def record(event: Event, tz: tzinfo) -> dict[str, Any]:
    """An event as plain data, its time in ``tz``."""
    found = asdict(event)
    found["occurred_at"] = event.occurred_at.astimezone(tz).isoformat()
    return found


def _changes(event: Event) -> str:
    if event.action == "updated" and event.changed_columns:
        return ", ".join(event.changed_columns)
    return ""


def _short(event: Event, tz: tzinfo) -> list[str]:
    return [str(event.id), times.show(event.occurred_at, tz), event.action,
            event.entity_type or "", event.entity_id or "", event.actor_id or "",
            event.request_id or "", _changes(event)]


def print_events(found: list[Event], tz: tzinfo, style: str) -> None:
    """The events, or, with none, nothing (a note on a terminal's stderr)."""
    if not found:
        if err.is_terminal:
            err.print("no events match", markup=False)
        return
    if style == "json":
        for event in found:
            sys.stdout.write(json.dumps(record(event, tz), ensure_ascii=False) + "\n")
    elif style == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        for event in found:
            data = record(event, tz)
            writer.writerow([_cell(data[c]) for c in COLUMNS])
    elif out.is_terminal:
        table = Table(*SHORT, box=None, header_style="bold")
        for event in found:
            table.add_row(*(Text(v) for v in _short(event, tz)))
        out.print(table)
    else:
        sys.stdout.write("\t".join(SHORT) + "\n")
        for event in found:
            sys.stdout.write("\t".join(_tab(v) for v in _short(event, tz)) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _tab(value: str) -> str:
    """A value on one tab-separated line."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _value(value: Any) -> str:
    return "" if value is _ABSENT else json.dumps(value, ensure_ascii=False)


_ABSENT = object()


def sides(event: Event) -> list[tuple[str, Any, Any, bool]]:
    """(column, before, after, changed) for every column of the images;
    an image's absent value is ``_ABSENT``."""
    before, after = event.before or {}, event.after or {}
    names = list(after) + [c for c in before if c not in after]
    changed = set(event.changed_columns or [])
    return [(c, before.get(c, _ABSENT) if event.before is not None else _ABSENT,
             after.get(c, _ABSENT) if event.after is not None else _ABSENT,
             c in changed or event.before is None or event.after is None)
            for c in names]


def print_diffs(found: list[Event], tz: tzinfo, style: str, all_columns: bool) -> None:
    """Each event's before and after side by side, changed values marked."""
    if not found:
        if err.is_terminal:
            err.print("no events match", markup=False)
        return
    for event in found:
        rows = [r for r in sides(event) if all_columns or r[3]]
        if style == "json":
            data = {k: v for k, v in record(event, tz).items() if k not in ("before", "after")}
            data["columns"] = [{"column": c, "before": None if b is _ABSENT else b,
                                "after": None if a is _ABSENT else a, "changed": ch}
                               for c, b, a, ch in rows]
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            continue
        title = (f"event {event.id}  {times.show(event.occurred_at, tz)}  {event.action}  "
                 f"{event.entity_type} {event.entity_id}  by {event.actor_id or '-'}")
        if out.is_terminal:
            table = Table("column", "before", "after", title=title, title_justify="left",
                          box=None, header_style="bold")
            for c, b, a, ch in rows:
                style_ = "bold yellow" if ch else ""
                table.add_row(Text(c), Text(_value(b), style="red" if ch else ""),
                              Text(_value(a), style=style_))
            out.print(table)
            out.print()
        else:
            sys.stdout.write(title + "\n")
            for c, b, a, ch in rows:
                sys.stdout.write(("* " if ch else "  ") + "\t".join(
                    _tab(v) for v in (c, _value(b), _value(a))) + "\n")
