"""`auditsql status`."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.table import Table

from auditsql import catalog, db
from auditsql.cli.options import Dsn, Json, Schema
from auditsql.cli.output import out, reported


def status(dsn: Dsn, schema: Schema = "audit", as_json: Json = False) -> None:
    """Show the installed version and every audited table with its triggers."""
    with reported(), db.connect(dsn) as conn, db.transaction(conn) as cur:
        version = catalog.require_installed(cur, schema)
        tables = catalog.tracked_tables(cur, schema)
    if as_json:
        payload = {
            "schema": schema,
            "version": version,
            "tables": [
                {**asdict(t), "healthy": t.healthy} for t in tables
            ],
        }
        print(json.dumps(payload, indent=2))
        return
    out.print(f"auditsql {version} in schema {schema}", markup=False)
    if not tables:
        out.print("no tables attached; run `auditsql attach TABLE`", markup=False)
        return
    grid = Table("table", "id columns", "source", "triggers", "state")
    for t in tables:
        states = sorted({s.state for s in t.triggers})
        grid.add_row(
            t.entity_type,
            ", ".join(t.id_columns),
            t.id_source,
            str(len(t.triggers)),
            "ok" if t.healthy else ", ".join(f"{s.name} on {s.table}: {s.state}" for s in t.triggers if s.state != "always") or "/".join(states),
        )
    out.print(grid)
