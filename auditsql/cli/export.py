"""`auditsql export`: stream events to a file or stdout with COPY."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from auditsql import errors, events, times
from auditsql.audit import Audit
from auditsql.cli import eventview as view
from auditsql.cli.options import Dsn, Schema
from auditsql.cli.output import err, reported

# How often progress is redrawn on a terminal, in seconds.
PROGRESS_EVERY = 0.5


def export(
    dsn: Dsn,
    since: Annotated[str, typer.Option(
        "--since", metavar="TIME", show_default=False,
        help="From this time on: 7d, 12h, 30m ago, or 2026-05-01[T12:00[+02:00]].")],
    until: view.Until = None,
    fmt: Annotated[str, typer.Option("--format", metavar="jsonl|csv",
                                     help="jsonl: one JSON object a line; csv: a header "
                                          "line (left out with --after-id), then one "
                                          "line per event.")] = "jsonl",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", show_default=False,
        help="Write to FILE (appended to with --after-id) instead of stdout.")] = None,
    after_id: Annotated[int | None, typer.Option(
        "--after-id", metavar="N", show_default=False,
        help="Only events with an id above N: resume an export after the last id it "
             "reported.")] = None,
    tz: view.Tz = None,
    schema: Schema = "audit",
) -> None:
    """Export events, oldest first (in id order), streamed with COPY.

    Memory stays flat however many events. On a terminal, progress is shown
    on stderr. At the end, or when interrupted, the last id written is
    reported on stderr as `last id N`; `--after-id N` resumes after it.
    """
    with reported():
        if fmt not in events.EXPORT_FORMATS:
            raise errors.InvalidValue(f"unknown export format {fmt!r}: use jsonl or csv")
        zone = times.zone(tz)
        chosen = events.Filter(since=times.parse_time(since, zone),
                               until=view.when(until, zone), after_id=after_id)
        events.check(chosen)
        with Audit(dsn, schema=schema) as audit:
            sink = _open(output, append=after_id is not None) if output else sys.stdout.buffer
            try:
                done = _write(audit.export(fmt, since=chosen.since, until=chosen.until,
                                           after_id=after_id, zone=zone.key),
                              sink, fmt, header=fmt == "csv" and after_id is None)
            finally:
                if output:
                    sink.close()
                else:
                    sink.flush()
    last = done.last_id if done.last_id is not None else after_id
    err.print(f"exported {done.events} events" + (f"; last id {last}" if last is not None
                                                  else ""), markup=False)


def _open(path: Path, *, append: bool) -> BinaryIO:
    try:
        return path.open("ab" if append else "wb")
    except OSError as exc:
        raise errors.InvalidValue(f"cannot write to {path}: {exc.strerror}") from None


def _write(chunks: object, sink: BinaryIO, fmt: str, *, header: bool) -> events.Exported:
    """Copy every chunk to ``sink``; on an interruption, say where to resume."""
    count, last = 0, b""
    progress = err.is_terminal
    shown = time.monotonic()
    try:
        for chunk in chunks:  # type: ignore[attr-defined]
            sink.write(chunk)
            if header:
                header = False
                continue
            count += 1
            last = chunk
            if progress and not count % 1000 and time.monotonic() - shown >= PROGRESS_EVERY:
                shown = time.monotonic()
                err.file.write(f"\rexported {count} events")
                err.file.flush()
    except BaseException:
        sink.flush()
        if last:
            err.print(f"interrupted after {count} events; last id "
                      f"{events.last_id(last, fmt)}: resume with --after-id "
                      f"{events.last_id(last, fmt)}", markup=False)
        raise
    if progress:
        err.file.write("\r")
    return events.Exported(count, events.last_id(last, fmt) if last else None)
