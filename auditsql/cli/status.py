"""`auditsql status`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from auditsql.audit import Audit
from auditsql.catalog import AuditedTable
from auditsql.cli.options import Dsn, Json, Schema
from auditsql.cli.output import out, reported
from auditsql.fingerprint import INSTALLED, MISSING, OUTDATED, UNEXPECTED, ObjectState

STATES = (INSTALLED, OUTDATED, MISSING, UNEXPECTED)


def _state(table: AuditedTable) -> str:
    """`ok`, or what is wrong (the same list verify judges)."""
    problems = table.problems()
    return "; ".join(p.message for p in problems) if problems else "ok"


def _policies(table: AuditedTable) -> str:
    """The table's column policies, or `-`."""
    parts = [f"exclude {c}" for c in table.exclude] + [f"redact {c}" for c in table.redact]
    parts += [f"on change {c}: {a}" for c, a in sorted(table.on_change.items())]
    if table.require_actor:
        parts.append("require actor")
    return "; ".join(parts) or "-"


def status(
    dsn: Dsn,
    schema: Schema = "audit",
    as_json: Json = False,
    objects: Annotated[
        bool,
        typer.Option(
            "--objects",
            help="List every object auditsql made, as installed, outdated, missing or "
                 "unexpected (with --json: an \"objects\" list).",
        ),
    ] = False,
) -> None:
    """Show the installed version, the retention policy and every audited
    table with its capture mode, policies and triggers.

    A table is ok when all its audit triggers exist and are enabled always,
    and its capture function matches the table as it is now (ALTER TABLE
    makes it out of date: it still captures every change, more slowly, until
    attach runs again). Objects are compared with their fingerprints:
    installed (as this version makes them), outdated (changed since, or made
    by another version), missing, or unexpected; only those not installed
    are listed unless --objects is given.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        found = audit.status()
    version, policy, tables, states = found.version, found.policy, found.tables, found.objects
    if as_json:
        payload = {
            "schema": schema,
            "version": version,
            "retention": {"policy": policy.name, "keep": policy.keep} if policy else None,
            "tables": [{**asdict(t), "healthy": t.healthy,
                        "problems": [asdict(p) for p in t.problems()]} for t in tables],
        }
        if objects:
            payload["objects"] = [
                {"kind": s.kind, "identity": s.identity, "state": s.state, "reason": s.reason}
                for s in states
            ]
        print(json.dumps(payload, indent=2))
        return
    print(f"auditsql {version} in schema {schema}")
    print(f"retention: {policy.name} (keep {policy.keep})" if policy
          else "retention: no policy set; run `auditsql retention set POLICY`")
    counts = Counter(s.state for s in states)
    print("objects: " + ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state]))
    listed = states if objects else [s for s in states if s.state != INSTALLED]
    if listed:
        _print_rows(("object", "state", "why"), [_object_row(s) for s in listed])
    if not tables:
        print("no tables attached; run `auditsql attach TABLE`")
        return
    headings = ("table", "id columns", "source", "capture", "policies", "triggers", "state")
    rows = [
        (t.entity_type, ", ".join(t.id_columns), t.id_source, t.capture, _policies(t),
         str(len(t.triggers)), _state(t))
        for t in tables
    ]
    _print_rows(headings, rows)


def _object_row(state: ObjectState) -> tuple[str, str, str]:
    return (f"{state.kind} {state.identity}", state.state, state.reason)


def _print_rows(headings: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not out.is_terminal:
        # Plain, unabridged, tab-separated lines for scripts and pipes.
        for row in (headings, *rows):
            print("\t".join(row))
        return
    grid = Table(*headings)
    for row in rows:
        grid.add_row(*row)
    out.print(grid)
