"""Instructions per single-row UPDATE of pgbench_accounts, per trigger.

The method of docs/performance.md ("Where the time goes"): one throwaway
PostgreSQL cluster holds a database per configuration; it is stopped, and
for each configuration a single-user backend runs under
``valgrind --tool=callgrind`` from a fresh copy of the data directory,
first 200 and then 600 single-row ``UPDATE pgbench_accounts`` statements,
each its own transaction. The difference of the two totals divided by 400
is what one statement costs: exact, and repeatable to the instruction.

Configurations: ``none`` (no trigger), ``row-min`` (the bench's bare row
trigger), the floor (row-min's one INSERT into ``audit.events``: what the
log's shape costs before capture does anything; then without the three
partial indexes), ``auditsql`` (row mode) without context, and ``auditsql`` with
context set for the session: through the six settings, and (where the
installed auditsql has it) through ``auditsql.context`` as set_context
stores it.

Then the same for a whole tpcb-like transaction (pgbench's builtin, each
table with its trigger): none, row-min and auditsql, and auditsql with
``SELECT 1`` or ``set_context`` as the transaction's first statement, the
pair ``make bench`` times. What a transaction adds, unlike its wall time,
does not move from run to run.

Last, what ``audit.seal()`` costs per event: one run over the events of
4,000 tpcb-like transactions (about 16,000, all unsealed), against the
same backend running ``SELECT 1``.

Run with ``python -m scripts.bench_instructions`` (a few minutes).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from auditsql import installer
from auditsql.render import Settings
from scripts import benchtools
from scripts.bench import MINLOG_SQL
from tests.harness import pgcluster

VALGRIND = "/usr/bin/valgrind"

# The context of the bench's "context set" runs, set for the session so that
# only what capture does with it is counted.
SIX_SETTINGS = {
    "auditsql.actor_id": "u-42", "auditsql.actor_email": "user42@example.com",
    "auditsql.actor_role": "member", "auditsql.ip_address": "203.0.113.9",
    "auditsql.user_agent": "bench/1.0", "auditsql.request_id": "req-42",
}


def session_six() -> str:
    return "".join(f"SELECT pg_catalog.set_config('{k}', '{v}', false);\n"
                   for k, v in SIX_SETTINGS.items())


def session_context() -> str:
    """auditsql.context as set_context stores it, kept for the session."""
    return ("SELECT audit.set_context('u-42', 'user42@example.com', 'member', '203.0.113.9', "
            "'bench/1.0', 'req-42'), pg_catalog.set_config('auditsql.context', "
            "pg_catalog.current_setting('auditsql.context'), false);\n")


# The floor: auditsql's capture function replaced by row-min's one INSERT,
# into audit.events, of what no event can do without (its action, entity
# type and key, both images): what the log's shape costs (its partitions,
# indexes and defaults) before capture does anything. In a second database,
# without the three partial indexes.
FLOOR_SQL = """
DO $floor$
DECLARE
    f regprocedure;
BEGIN
    SELECT t.tgfoid::regprocedure INTO STRICT f FROM pg_trigger AS t
    WHERE t.tgrelid = 'pgbench_accounts'::regclass AND NOT t.tgisinternal
      AND t.tgtype & 16 <> 0;  -- the UPDATE trigger
    -- Names qualified, no SET clause: as capture's own function.
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %s RETURNS trigger LANGUAGE plpgsql
                     SECURITY DEFINER AS %L$f$, f, $body$
BEGIN
    INSERT INTO audit.events (action, entity_type, entity_id, before, after, category)
    VALUES ('updated', 'public.pgbench_accounts', NEW.aid::pg_catalog.text,
            pg_catalog.to_jsonb(OLD), pg_catalog.to_jsonb(NEW), 'data');
    RETURN NULL;
END
$body$);
END
$floor$;
"""
FLOOR_FEWER_INDEXES_SQL = """
DROP INDEX audit.events_actor_idx, audit.events_request_id_idx,
           audit.events_previous_entity_id_idx;
"""

CONFIGS: dict[str, tuple[str, str]] = {
    # name: (database, statements run before the counted ones)
    "none": ("i_none", ""),
    "row-min": ("i_rowmin", ""),
    "floor: the log's shape only": ("i_floor", ""),
    "floor, entity and BRIN indexes only": ("i_floor2", ""),
    "auditsql": ("i_audit", ""),
    "auditsql, context in the six settings": ("i_audit", session_six()),
    "auditsql, context by set_context": ("i_audit", session_context()),
}


PGBENCH_TABLES = ("pgbench_accounts", "pgbench_tellers", "pgbench_branches", "pgbench_history")

SET_CONTEXT = ("SELECT audit.set_context('u-42', 'user42@example.com', 'member', '203.0.113.9', "
               "'bench/1.0', 'req-42'); ")

TPCB_CONFIGS: dict[str, tuple[str, str]] = {
    # name: (database, the transaction's first statement)
    "none": ("t_none", ""),
    "row-min": ("t_rowmin", ""),
    "auditsql": ("t_audit", ""),
    "auditsql, SELECT 1 first": ("t_audit", "SELECT 1; "),
    "auditsql, set_context first": ("t_audit", SET_CONTEXT),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def updates(n: int) -> str:
    return "".join(f"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = {i % 100000 + 1};\n"
                   for i in range(n))


def tpcb(n: int, first: str) -> str:
    """*n* tpcb-like transactions as pgbench's builtin runs them (scale 1),
    one per line, each starting with *first*; the same values every run."""
    rng = random.Random(42)
    lines = []
    for _ in range(n):
        aid, tid, delta = rng.randint(1, 100_000), rng.randint(1, 10), rng.randint(-5000, 5000)
        lines.append(
            f"BEGIN; {first}UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid}; "
            f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid}; "
            f"UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}; "
            f"UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = 1; "
            f"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
            f"VALUES ({tid}, 1, {aid}, {delta}, CURRENT_TIMESTAMP); END;\n")
    return "".join(lines)


def settle(cluster: pgcluster.Cluster, db: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT *db*, so that each count starts from
    settled statistics, visibility and pages."""
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def copy_database(cluster: pgcluster.Cluster, db: str, template: str) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db} TEMPLATE {template}")


def prepare_trio(cluster: pgcluster.Cluster, prefix: str, tables: tuple[str, ...],
                 attach: Callable[[psycopg.Connection], None]) -> None:
    """Databases <prefix>none, <prefix>rowmin and <prefix>audit, each with
    pgbench's tables (scale 1): *tables* with row-min's trigger in the
    second, auditsql installed in the third and *attach* run there."""
    for db in (f"{prefix}none", f"{prefix}rowmin", f"{prefix}audit"):
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {db}")
        subprocess.run([str(cluster.bindir / "pgbench"), "-i", "-q", "-s", "1",
                        *benchtools.pgbench_conn_args(cluster, db)],
                       check=True, capture_output=True)
    with psycopg.connect(cluster.dsn(f"{prefix}rowmin"), autocommit=True) as conn:
        conn.execute(MINLOG_SQL)
        for table in tables:
            conn.execute(f"CREATE TRIGGER minlog AFTER INSERT OR UPDATE OR DELETE ON {table} "
                         "FOR EACH ROW EXECUTE FUNCTION minlog_row()")
    with psycopg.connect(cluster.dsn(f"{prefix}audit")) as conn:
        installer.install(conn, Settings())
        attach(conn)
    for db in (f"{prefix}none", f"{prefix}rowmin", f"{prefix}audit"):
        settle(cluster, db)


SEAL_TRANSACTIONS = 4_000


def prepare(cluster: pgcluster.Cluster) -> int:
    """i_*: pgbench_accounts with the triggers, for single-row UPDATEs;
    i_floor*: i_audit with the floor's trigger; t_*: all four tables, for
    tpcb-like transactions; s_audit: t_audit with the log sealed, then
    SEAL_TRANSACTIONS tpcb-like transactions. Returns the number of events
    these wrote (an update that changes nothing writes none)."""
    prepare_trio(cluster, "i_", ("pgbench_accounts",),
                 lambda conn: installer.attach(conn, ["pgbench_accounts"], Settings()))
    prepare_trio(cluster, "t_", PGBENCH_TABLES, benchtools.attach_pgbench)
    for db, sql in (("i_floor", FLOOR_SQL), ("i_floor2", FLOOR_SQL + FLOOR_FEWER_INDEXES_SQL)):
        copy_database(cluster, db, "i_audit")
        with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
            conn.execute(sql)
        settle(cluster, db)
    copy_database(cluster, "s_audit", "t_audit")
    with psycopg.connect(cluster.dsn("s_audit"), autocommit=True) as conn:
        conn.execute("SELECT audit.seal()")
    subprocess.run([str(cluster.bindir / "pgbench"), "-n", "-t", str(SEAL_TRANSACTIONS),
                    *benchtools.pgbench_conn_args(cluster, "s_audit")],
                   check=True, capture_output=True)
    with psycopg.connect(cluster.dsn("s_audit"), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM audit.events WHERE id >"
                           " (SELECT sealed_to FROM audit.seal_head)").fetchone()
    settle(cluster, "s_audit")
    if row is None or row[0] < 3 * SEAL_TRANSACTIONS:
        raise RuntimeError(f"s_audit: {row} events to seal")
    return int(row[0])


def seal_cost(cluster: pgcluster.Cluster, work: Path, events: int) -> float:
    """Instructions per event of one seal() over s_audit's *events*
    unsealed events."""
    base = count(cluster, cluster.datadir, work, "s_audit", "SELECT 1;\n")
    sealing = count(cluster, cluster.datadir, work, "s_audit", "SELECT audit.seal();\n")
    return (sealing - base) / events


def count(cluster: pgcluster.Cluster, source: Path, work: Path, db: str, script: str) -> int:
    """Instructions callgrind counts for a single-user backend running *script*."""
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(source, data, symlinks=True)
    uid, gid = cluster.run_as.uid, cluster.run_as.gid
    if uid is not None:
        for root, dirs, files in os.walk(work):
            for name in (*dirs, *files):
                os.chown(os.path.join(root, name), uid, gid if gid is not None else -1)
    out = work / "callgrind.out"
    proc = subprocess.run(
        [VALGRIND, "--tool=callgrind", f"--callgrind-out-file={out}",
         str(cluster.bindir / "postgres"), "--single", "-D", str(data), "-c", "jit=off", db],
        input=script, capture_output=True, text=True, cwd=work,
        user=uid, group=gid, extra_groups=None if uid is None else [],
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"})
    if proc.returncode != 0 or "ERROR" in proc.stdout or "ERROR" in proc.stderr:
        raise RuntimeError(f"single-user run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    match = re.search(r"^summary: (\d+)", out.read_text(), re.M)
    if not match:
        raise RuntimeError("no summary in the callgrind output")
    out.unlink()
    return int(match.group(1))


def measure(cluster: pgcluster.Cluster, work: Path, configs: dict[str, tuple[str, str]],
            script: Callable[[int, str], str], runs: tuple[int, int],
            only: list[str] | None) -> dict[str, float]:
    """Instructions per unit of *script* for each configuration: the
    difference of the counts of runs[1] and runs[0] units, divided."""
    low_n, high_n = runs
    results: dict[str, float] = {}
    for name, (db, first) in configs.items():
        if only and name not in only:
            continue
        try:
            low = count(cluster, cluster.datadir, work, db, script(low_n, first))
            high = count(cluster, cluster.datadir, work, db, script(high_n, first))
        except RuntimeError as exc:
            log(f"{name}: {str(exc).strip().splitlines()[-1]}")
            continue
        results[name] = (high - low) / (high_n - low_n)
        log(f"{name}: {results[name]:,.0f}")
    return results


def table(results: dict[str, float], unit: str) -> str:
    """The results, with what each adds to none and that against row-min's."""
    none = results.get("none")
    rowmin = results.get("row-min")
    lines = [f"{'trigger':<42}{unit:>15}{'added':>10}{'/ row-min':>11}"]
    for name, value in results.items():
        added = value - none if none is not None else None
        ratio = (added / (rowmin - none)) if added is not None and rowmin and none else None
        lines.append(f"{name:<42}{value:>15,.0f}"
                     f"{'' if added is None or name == 'none' else f'{added:,.0f}':>10}"
                     f"{'' if ratio is None or name == 'none' else f'{ratio:.2f}':>11}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-version", type=int, default=15)
    parser.add_argument("--only", action="append", help="configuration(s) to count")
    args = parser.parse_args(argv)
    cluster = benchtools.start_cluster(args.pg_version, {"fsync": "off"})
    if cluster is None:
        return 1
    try:
        log("preparing databases ...")
        to_seal = prepare(cluster)
        subprocess.run([str(cluster.bindir / "pg_ctl"), "stop", "-D", str(cluster.datadir), "-m",
                        "fast", "-w"], check=True, capture_output=True, user=cluster.run_as.uid,
                       group=cluster.run_as.gid, cwd=cluster.sockdir)
        work = cluster.sockdir / "work"
        work.mkdir()
        if cluster.run_as.uid is not None:
            os.chown(work, cluster.run_as.uid, cluster.run_as.gid or -1)
        single = measure(cluster, work, CONFIGS, lambda n, first: first + updates(n), (200, 600),
                         args.only)
        print(table(single, "per statement"))
        transactions = measure(cluster, work, TPCB_CONFIGS, tpcb, (100, 300), args.only)
        print()
        print(table(transactions, "per tpcb-like"))
        one, context = (transactions.get("auditsql, SELECT 1 first"),
                        transactions.get("auditsql, set_context first"))
        if one and context:
            print(f"set_context in place of SELECT 1: {context - one:,.0f} more per transaction, "
                  f"{one / context:.3f} of its instructions (make bench times the pair; target >= 0.95)")
        if not args.only:
            per_event = seal_cost(cluster, work, to_seal)
            print(f"\nseal(), {to_seal:,} tpcb-like events in one run: {per_event:,.0f} instructions per event")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
