"""`auditsql status`."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.table import Table

from auditsql import catalog, db, retention
from auditsql.catalog import TrackedTable
from auditsql.cli.options import Dsn, Json, Schema
from auditsql.cli.output import out, reported


def _state(table: TrackedTable) -> str:
    """`ok`, or what is wrong: each trigger that is not enabled always, with
    its state, and a capture function older than the table."""
    if table.healthy:
        return "ok"
    problems = [
        f"{t.name} on {t.table}: {t.state}" for t in table.triggers if t.state != "always"
    ]
    if not table.capture_current:
        problems.append("capture function out of date: run attach again")
    return "; ".join(problems)


def _policies(table: TrackedTable) -> str:
    """The table's column policies, or `-`."""
    parts = [f"exclude {c}" for c in table.exclude] + [f"redact {c}" for c in table.redact]
    parts += [f"on change {c}: {a}" for c, a in sorted(table.on_change.items())]
    if table.strict:
        parts.append("strict")
    return "; ".join(parts) or "-"


def status(dsn: Dsn, schema: Schema = "audit", as_json: Json = False) -> None:
    """Show the installed version, the retention policy and the audited tables.

    A table is ok when all its audit triggers exist and are enabled always,
    and its capture function matches the table as it is now (ALTER TABLE
    makes it out of date: it still captures every change, more slowly, until
    attach runs again).
    """
    with reported(), db.connect(dsn) as conn, db.transaction(conn) as cur:
        version = catalog.require_installed(cur, schema)
        cur.execute("SET LOCAL IntervalStyle = 'postgres'")
        policy = retention.policy(cur, schema)
        tables = catalog.tracked_tables(cur, schema)
    if as_json:
        payload = {
            "schema": schema,
            "version": version,
            "retention": {"policy": policy.name, "keep": policy.keep} if policy else None,
            "tables": [{**asdict(t), "healthy": t.healthy} for t in tables],
        }
        print(json.dumps(payload, indent=2))
        return
    print(f"auditsql {version} in schema {schema}")
    print(f"retention: {policy.name} (keep {policy.keep})" if policy
          else "retention: no policy set; run `auditsql retention set POLICY`")
    if not tables:
        print("no tables attached; run `auditsql attach TABLE`")
        return
    headings = ("table", "id columns", "source", "capture", "policies", "triggers", "state")
    rows = [
        (t.entity_type, ", ".join(t.id_columns), t.id_source, t.capture, _policies(t),
         str(len(t.triggers)), _state(t))
        for t in tables
    ]
    if not out.is_terminal:
        # Plain, unabridged, tab-separated lines for scripts and pipes.
        for row in (headings, *rows):
            print("\t".join(row))
        return
    grid = Table(*headings)
    for row in rows:
        grid.add_row(*row)
    out.print(grid)
