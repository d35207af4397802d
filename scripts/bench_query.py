"""Benchmark reading the log: entity_history, row_at, actor_events,
request_events, transaction_events and table_at on a large generated log,
and the write cost of the indexes they use.

Starts a throwaway cluster, installs auditsql, attaches 50 tables, and fills
the log straight into its monthly partitions with INSERT ... SELECT, as a
superuser (this measures reading, not capture): 60 days of events over
100,000 entities, one table holding 100,000 of its own (for table_at) and
the 49 others sharing the rest; every entity is created first, then updated
at random; one update in a thousand changes the row's key; three events per
transaction, six per request, 1,000 actors. Then each query runs on random
entities, actors, requests and times, and the report gives median, p95 and
worst, with the plan of one run of each (auto_explain, nested statements).
Each query counts its rows rather than sending them: the times are the
server's work and one round trip, not the client's decoding of the rows.
A round trip of ``SELECT 1`` is timed alongside, for the machine's noise.

``--index-cost`` measures instead what each index added for reading costs
every event written: the time of inserting 200,000 events with all the
log's indexes, and with that one dropped, and its size per event.

Run with ``make bench-query`` (10 million events), or for example
``python -m scripts.bench_query --events 1000000`` (from the repository root).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import psycopg

from auditsql import installer
from auditsql.render import Settings
from scripts import benchtools
from tests.harness import pgcluster

TABLES = 50
BIG_ROWS = 100_000  # entities of t01, the table table_at reads
SMALL_ROWS = 2_000  # entities of each other table
ACTORS = 1_000
DAYS = 60
SAMPLES = 200
CHUNK = 1_000_000
NEW_INDEXES = ("events_request_id_idx", "events_previous_entity_id_idx")

# Events g = 1 .. total, in id and time order. The first `created` events
# create every entity, t01's first; the rest update one at random (t01 one
# time in five), every thousandth changing its key, and one in two hundred
# deleting it. The key of an entity of table t is its number.
FILL = """
INSERT INTO audit.events (id, occurred_at, txid, category, action, entity_type, entity_id,
                          previous_entity_id, actor_id, actor_email, actor_role, request_id,
                          db_user, application_name, before, after)
SELECT g, %(start)s::timestamptz + g * %(step)s::interval, 1000000 + g / 3, 'data',
       CASE WHEN g <= %(created)s THEN 'created' WHEN g %% 200 = 0 THEN 'deleted' ELSE 'updated' END,
       format('public.t%%s', lpad(x.t::text, 2, '0')),
       CASE WHEN g > %(created)s AND g %% 1000 = 0 THEN (x.e + 10000000 + g)::text ELSE x.e::text END,
       CASE WHEN g > %(created)s AND g %% 1000 = 0 THEN x.e::text END,
       'u-' || (g * 7919 %% {actors}), 'user' || (g * 7919 %% {actors}) || '@example.com',
       CASE WHEN g %% 50 = 0 THEN 'admin' ELSE 'member' END,
       'req-' || (g / 6), 'bench', 'bench_query',
       CASE WHEN g > %(created)s THEN jsonb_build_object('n', g - 1) END,
       CASE WHEN g <= %(created)s OR g %% 200 <> 0
            THEN jsonb_build_object('id', x.e, 'status', 'shipped', 'n', g, 'note', 'some words here') END
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g,
     LATERAL (SELECT CASE WHEN g <= {big} THEN 1
                          WHEN g <= %(created)s THEN 2 + (g - {big} - 1) / {small}
                          WHEN g %% 5 = 0 THEN 1 ELSE 2 + (g * 31 %% {others}) END AS t,
                     CASE WHEN g <= {big} THEN g
                          WHEN g <= %(created)s THEN 1 + (g - {big} - 1) %% {small}
                          WHEN g %% 5 = 0 THEN 1 + (g * 7919 %% {big})
                          ELSE 1 + (g * 104729 %% {small}) END AS e) AS x
""".format(actors=ACTORS, big=BIG_ROWS, small=SMALL_ROWS, others=TABLES - 1)


def log(message: str) -> None:
    print(f"[bench-query] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


class Bench:
    def __init__(self, cluster: pgcluster.Cluster, total: int) -> None:
        self.cluster = cluster
        self.dsn = cluster.dsn("reading")
        self.total = total
        self.created = BIG_ROWS + (TABLES - 1) * SMALL_ROWS
        self.end = datetime.now(timezone.utc).replace(microsecond=0)
        self.start = self.end - timedelta(days=DAYS)
        self.step = timedelta(days=DAYS) / total
        self.conn: psycopg.Connection = None  # type: ignore[assignment]  # set by setup()
        self.plans: dict[str, str] = {}

    def setup(self) -> None:
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE reading")
        with psycopg.connect(self.dsn) as conn:
            installer.install(conn, Settings())
        self.conn = psycopg.connect(self.dsn, autocommit=True)
        for t in range(1, TABLES + 1):
            self.conn.execute(f"CREATE TABLE t{t:02d} (id bigint PRIMARY KEY, status text, n int,"
                              " note text)")
            self.conn.execute(f"SELECT audit.attach('t{t:02d}')")
        self.conn.execute("SELECT audit.ensure_partitions(%s, 4)", (self.start,))

    def fill(self) -> None:
        if self.total < self.created * 2:
            raise SystemExit(f"--events must be at least {self.created * 2:,}")
        first = 1
        while first <= self.total:
            last = min(first + CHUNK - 1, self.total)
            started = time.monotonic()
            self.conn.execute(FILL, {"start": self.start, "step": self.step, "created": self.created,
                                     "first": first, "last": last})
            log(f"  events {first:,} .. {last:,} in {time.monotonic() - started:.1f} s")
            first = last + 1
        self.conn.execute("SELECT setval('audit.events_id_seq', %s)", (self.total,))
        log("  ANALYZE")
        self.conn.execute("VACUUM ANALYZE audit.events")

    def sizes(self) -> str:
        row = self.conn.execute(
            "SELECT pg_size_pretty(sum(pg_table_size(relid))), pg_size_pretty(sum(pg_indexes_size(relid)))"
            " FROM pg_partition_tree('audit.events')").fetchone()
        assert row is not None
        return f"log: {self.total:,} events, {row[0]} heap, {row[1]} indexes"

    def time(self, name: str, query: str, params: Callable[[random.Random], tuple[object, ...]],
             samples: int = SAMPLES) -> tuple[str, list[float]]:
        rng = random.Random(name)
        times = []
        for _ in range(samples):
            args = params(rng)
            started = time.perf_counter()
            self.conn.execute(query, args).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        self.plans[name] = self.plan(query, params(rng))
        return name, times

    def plan(self, query: str, args: tuple[object, ...]) -> str:
        """The plans auto_explain gives of the statements the query runs."""
        lines: list[str] = []

        def keep(diag: psycopg.errors.Diagnostic) -> None:
            if diag.message_primary and "Query Text" in diag.message_primary:
                lines.append(diag.message_primary)

        self.conn.add_notice_handler(keep)
        try:
            self.conn.execute("LOAD 'auto_explain'")
            self.conn.execute("SET auto_explain.log_min_duration = 0")
            self.conn.execute("SET auto_explain.log_analyze = on")
            self.conn.execute("SET auto_explain.log_timing = on")
            self.conn.execute("SET auto_explain.log_nested_statements = on")
            self.conn.execute("SET client_min_messages = log")
            self.conn.execute(query, args).fetchall()
        finally:
            self.conn.execute("RESET client_min_messages")
            self.conn.execute("SET auto_explain.log_min_duration = -1")
            self.conn.remove_notice_handler(keep)
        return "\n\n".join(lines)

    def entity(self, rng: random.Random) -> tuple[str, str]:
        if rng.random() < 0.2:
            return "t01", str(rng.randint(1, BIG_ROWS))
        return f"t{rng.randint(2, TABLES):02d}", str(rng.randint(1, SMALL_ROWS))

    def moment(self, rng: random.Random) -> datetime:
        return self.start + timedelta(seconds=rng.uniform(0, DAYS * 86400))

    def measure(self) -> list[tuple[str, list[float]]]:
        last_week = self.end - timedelta(days=7)
        results = [
            self.time("SELECT 1 (round trip)", "SELECT 1", lambda r: ()),
            self.time("entity_history", "SELECT count(*) FROM audit.entity_history(%s, %s)",
                      lambda r: self.entity(r)),
            self.time("row_at", "SELECT audit.row_at(%s, %s, %s)",
                      lambda r: (*self.entity(r), self.moment(r))),
            self.time("actor_events (last week, <= 1000)",
                      "SELECT count(*) FROM audit.actor_events(%s, %s, NULL, 1000)",
                      lambda r: (f"u-{r.randrange(ACTORS)}", last_week)),
            self.time("request_events", "SELECT count(*) FROM audit.request_events(%s)",
                      lambda r: (f"req-{r.randint(1, self.total // 6)}",)),
            self.time("transaction_events", "SELECT count(*) FROM audit.transaction_events(%s)",
                      lambda r: (1_000_000 + r.randint(1, self.total // 3),)),
            self.time("changes (one row, one column)",
                      "SELECT count(*) FROM audit.changes WHERE entity_type = %s AND entity_id = %s"
                      " AND column_name = 'status'",
                      lambda r: (lambda t: (f"public.{t[0]}", t[1]))(self.entity(r))),
        ]
        events_t01 = self.conn.execute(
            "SELECT count(*) FROM audit.events WHERE entity_type = 'public.t01'").fetchone()
        assert events_t01 is not None
        for label, at in (("end", self.end), ("middle", self.start + timedelta(days=DAYS / 2))):
            results.append(self.time(
                f"table_at t01 ({BIG_ROWS:,} rows, {events_t01[0]:,} events; at the {label})",
                "SELECT count(*) FROM audit.table_at('t01', %s)", lambda r, at=at: (at,), samples=3))
        return results


def index_cost(cluster: pgcluster.Cluster, reps: int) -> str:
    """Time to insert 200,000 events with every index, and with each new one
    dropped; the size each new index takes per event."""
    rows = 200_000
    dsn = cluster.dsn("indexcost")
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE indexcost")
    with psycopg.connect(dsn) as conn:
        installer.install(conn, Settings())
    lines = [f"inserting {rows:,} events in one statement, median of {reps}:"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET auditsql.permit_ddl = on")
        conn.execute("CREATE TABLE t01 (id bigint PRIMARY KEY)")
        conn.execute("SELECT audit.attach('t01')")
        definitions = {name: conn.execute(
            "SELECT pg_get_indexdef(%s::regclass)", (f"audit.{name}",)).fetchone()[0]  # type: ignore[index]
            for name in NEW_INDEXES}
        fill = FILL.replace("INSERT INTO audit.events (id,", "INSERT INTO audit.events (")
        fill = fill.replace("SELECT g, %(start)s", "SELECT %(start)s")

        def run() -> float:
            conn.execute("TRUNCATE audit.events_default")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            conn.execute(fill, {"start": datetime(2000, 1, 1, tzinfo=timezone.utc),
                                "step": timedelta(seconds=1), "created": 10, "first": 1,
                                "last": rows})
            return (time.perf_counter() - started) / rows * 1e6

        # Everything lands in the default partition (year 2000); the guard
        # refuses TRUNCATE of the log, so disable it in this scratch database.
        conn.execute("ALTER TABLE audit.events_default DISABLE TRIGGER USER")
        all_indexes = statistics.median(run() for _ in range(reps))
        lines.append(f"  all indexes: {all_indexes:.2f} us per event")
        for name in NEW_INDEXES:
            size = conn.execute(
                "SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index AS i"
                " JOIN pg_class AS c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'audit.events_default'::regclass"
                "   AND pg_get_indexdef(i.indexrelid) LIKE %s",
                ("%" + definitions[name].split(" USING ")[1],)).fetchone()
            conn.execute(f"DROP INDEX audit.{name}")
            without = statistics.median(run() for _ in range(reps))
            conn.execute(definitions[name])
            per_event = (size[0] or 0) / rows if size else 0
            lines.append(f"  without {name}: {without:.2f} us per event"
                         f" (the index: {all_indexes - without:+.2f} us, {per_event:.1f} B per event)")
    return "\n".join(lines)


def report(results: list[tuple[str, list[float]]], head: str, plans: dict[str, str]) -> str:
    lines = [head, "", "| query | median ms | p95 ms | worst ms | runs |", "|---|---|---|---|---|"]
    for name, times in results:
        lines.append(f"| {name} | {statistics.median(times):.2f} | {percentile(times, 0.95):.2f}"
                     f" | {max(times):.2f} | {len(times)} |")
    for name, plan in plans.items():
        lines += ["", f"## {name}", "", plan]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000,
                        help="events in the generated log (default 10 million)")
    parser.add_argument("--index-cost", action="store_true",
                        help="measure the write cost of the indexes reading uses instead")
    parser.add_argument("--reps", type=int, default=5, help="repetitions for --index-cost")
    parser.add_argument("--pg-version", type=int, default=18, help="PostgreSQL major version")
    args = parser.parse_args(argv)
    settings = {
        "fsync": "on", "synchronous_commit": "on", "shared_buffers": "1GB",
        "max_wal_size": "16GB", "checkpoint_timeout": "30min", "maintenance_work_mem": "256MB",
        "work_mem": "64MB",
    }
    cluster = benchtools.start_cluster(args.pg_version, settings)
    if cluster is None:
        return 1
    started = time.monotonic()
    try:
        head = benchtools.describe(cluster.dsn(), settings)
        if args.index_cost:
            print(head + "\n\n" + index_cost(cluster, args.reps))
        else:
            bench = Bench(cluster, args.events)
            bench.setup()
            log(f"filling {args.events:,} events ...")
            bench.fill()
            log("measuring ...")
            results = bench.measure()
            print(report(results, head + "\n" + bench.sizes(), bench.plans))
        log(f"done in {time.monotonic() - started:.0f} s")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
