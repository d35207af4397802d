"""End-to-end demo on a throwaway local database.

Starts a private PostgreSQL cluster, installs auditsql with the CLI, sets a
retention policy, attaches two tables, writes as two different actors,
answers "who changed this record?" from the audit log, and verifies that
auditing is intact. Everything is removed on exit.

The server is the one the test suite would use: ``$AUDITSQL_PG_VERSION`` (a
major) if set, else ``$AUDITSQL_PG_BIN``, else the newest version found
(``tests/harness/pgcluster.py``). Run from the repository root as
``python -m scripts.demo`` (``make demo``); tests/docs/test_docs_demo.py runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

import auditsql
from tests.harness import pgcluster

console = Console(highlight=False, width=110)

SCHEMA_SQL = """
CREATE TABLE customers (
    id    bigint PRIMARY KEY,
    name  text NOT NULL,
    email text NOT NULL,
    tier  text NOT NULL DEFAULT 'standard'
);
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    status      text NOT NULL,
    total       numeric(10, 2) NOT NULL
);
"""

WHO_CHANGED = """
SELECT to_char(e.occurred_at, 'HH24:MI:SS'), e.actor_email, e.actor_role, e.action,
       e.entity_type || ' ' || e.entity_id,
       coalesce(array_to_string(e.changed_columns, ', '), ''),
       coalesce(e.request_id, '')
FROM audit.history AS e
WHERE e.action IN ('created', 'updated', 'deleted', 'truncated')
ORDER BY e.id
"""

WHO_MODIFIED_ORDER = """
SELECT actor_email, action, before ->> 'status', after ->> 'status'
FROM audit.history
WHERE entity_type = 'public.orders' AND entity_id = '1001' AND action = 'updated'
ORDER BY id
"""


def cli(*args: str, dsn: str) -> None:
    """Run the real auditsql CLI, echoing the command line."""
    console.print(f"[bold]$ auditsql {' '.join(args)}[/bold]")
    subprocess.run(
        [sys.executable, "-m", "auditsql", *args],
        check=True,
        env={**os.environ, "AUDITSQL_DSN": dsn},
    )


def write_as_two_actors(dsn: str) -> None:
    """Alice (admin) sets up data; Bob (support) changes an order."""
    with psycopg.connect(dsn) as conn:
        with auditsql.audit_context(
            conn, actor_id="u-1", email="alice@example.com", role="admin",
            ip_address="203.0.113.7", user_agent="demo/1.0", request_id="req-alice-1",
        ):
            conn.execute("INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com'), "
                         "(2, 'Grace', 'grace@example.com')")
            conn.execute("INSERT INTO orders VALUES (1001, 1, 'new', 120.00), (1002, 2, 'new', 80.50)")
        with auditsql.audit_context(
            conn, actor_id="u-2", email="bob@example.com", role="support",
            ip_address="198.51.100.23", user_agent="demo/1.0", request_id="req-bob-1",
        ):
            conn.execute("UPDATE orders SET status = 'refunded' WHERE id = 1001")
            conn.execute("UPDATE customers SET tier = 'gold' WHERE id = 2")
        with auditsql.audit_context(
            conn, actor_id="u-1", email="alice@example.com", role="admin",
            ip_address="203.0.113.7", request_id="req-alice-2",
        ):
            conn.execute("DELETE FROM orders WHERE id = 1002")


def show(dsn: str) -> None:
    """Print the log and answer the question."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(WHO_CHANGED).fetchall()
        answer = conn.execute(WHO_MODIFIED_ORDER).fetchall()
    table = Table("time", "actor", "role", "action", "record", "changed", "request",
                  title="Who changed what")
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row))
    console.print(table)
    console.print("[bold]Who modified order 1001?[/bold]")
    for actor, action, before, after in answer:
        console.print(f"  {actor} {action} it: status {before} -> {after}")


def server_bindir() -> Path | None:
    """The bin directory of the server to run, chosen as the tests choose it."""
    version = os.environ.get("AUDITSQL_PG_VERSION")
    if version:
        return pgcluster.find_bindirs().get(int(version))
    return pgcluster.find_bindir()


def main() -> int:
    started = time.monotonic()
    bindir = server_bindir()
    if bindir is None:
        console.print("no PostgreSQL server binaries found: run `make pg-binaries` "
                      "or set AUDITSQL_PG_BIN (or AUDITSQL_PG_VERSION to one found)",
                      style="red")
        return 1
    cluster = pgcluster.start_cluster(bindir)
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE demo")
        dsn = cluster.dsn("demo")
        console.print(f"throwaway PostgreSQL {cluster.version_num // 10000} cluster started")
        cli("install", dsn=dsn)
        cli("retention", "set", "saas", dsn=dsn)
        with psycopg.connect(dsn) as conn:
            conn.execute(SCHEMA_SQL)
        cli("attach", "customers", "orders", dsn=dsn)
        write_as_two_actors(dsn)
        show(dsn)
        cli("status", dsn=dsn)
        cli("verify", "--expect", "customers", "--expect", "orders", dsn=dsn)
    finally:
        cluster.stop()
    console.print(f"demo finished in {time.monotonic() - started:.1f} s; cluster removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
