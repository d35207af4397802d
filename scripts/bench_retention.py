"""Benchmark retention and partition maintenance as the log grows.

Starts a throwaway cluster, installs auditsql with a one-year policy, and
fills the log with months of past events (written straight into the monthly
partitions with generate_series, as the owner may: this measures retention,
not capture) until it holds each requested size. At each size it times:

* ``maintain()`` with nothing to do (the daily run on most days);
* ``maintain()`` creating one partition ahead (the daily run once a month);
* ``maintain()`` moving rows out of the default partition;
* ``apply_retention()`` with nothing due;
* ``apply_retention()`` dropping the oldest month (median of three months);
* ``apply_retention()`` rebuilding a month that holds events under legal hold;

while a writer inserts into an audited table every few milliseconds; the
table shows the longest any of its inserts took during each operation.

Months hold the same number of events at every size, so what changes with
the size of the log is the number of months (partitions), not the work per
month: the figures show whether time follows the log or the month.

Run with ``make bench-retention`` (sizes 1, 10 and 30 million events), or
for example ``python -m scripts.bench_retention --sizes 0.2,1 --month-rows 50000``
(from the repository root).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg

from auditsql import installer
from auditsql.render import Settings
from scripts import benchtools
from tests.harness import pgcluster

KEEP = "1 year"
HELD_ENTITY = "7"
ENTITIES = 50_000
DEFAULT_ROWS = 10_000
WRITER_PAUSE = 0.005

FILL = """
INSERT INTO audit.{partition} (id, occurred_at, txid, category, action, entity_type, entity_id,
                               actor_id, db_user, application_name, after)
SELECT %(first)s + g, %(start)s::timestamptz + (g - 1) * %(step)s::interval, 1, 'data', 'updated',
       'public.orders', (g %% {entities})::text,
       CASE WHEN g %% 10 = 0 THEN 'u-' || (g %% 1000) END, 'bench', 'bench_retention',
       jsonb_build_object('status', 'shipped', 'n', g)
FROM generate_series(1, %(rows)s) AS g
"""


def log(message: str) -> None:
    print(f"[bench-retention] {message}", file=sys.stderr, flush=True)


@dataclass
class Writer:
    """Inserts into an audited table every few milliseconds and keeps how
    long each insert took."""

    dsn: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.monotonic()
                conn.execute("INSERT INTO orders (status) VALUES ('new')")
                self.samples.append((started, time.monotonic()))
                time.sleep(WRITER_PAUSE)

    def worst_between(self, start: float, end: float) -> float:
        """The longest insert in flight at any time in [start, end], in seconds."""
        time.sleep(0.05)
        worst = [e - s for s, e in self.samples if e >= start and s <= end]
        return max(worst, default=0.0)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


@dataclass
class Row:
    """Measurements at one size of the log."""

    events: int
    months: int
    seconds: dict[str, float] = field(default_factory=dict)
    writer: dict[str, float] = field(default_factory=dict)


class Bench:
    def __init__(self, cluster: pgcluster.Cluster, month_rows: int) -> None:
        self.cluster = cluster
        self.dsn = cluster.dsn("retention")
        self.month_rows = month_rows
        self.conn: psycopg.Connection = None  # type: ignore[assignment]  # set by setup()
        self.next_id = 1_000_000_000
        self.future = 24  # months ahead used for default-partition moves
        self.partial: set[str] = set()  # months retention rebuilt: not full any more

    def setup(self) -> None:
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE retention")
        with psycopg.connect(self.dsn) as conn:
            installer.install(conn, Settings(), KEEP)
        self.conn = psycopg.connect(self.dsn, autocommit=True)
        self.conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, status text)")
        self.conn.execute("SELECT audit.attach('orders')")

    def months(self) -> list[tuple[str, datetime, datetime]]:
        """The past monthly partitions (name, from, to), oldest first."""
        return self.conn.execute(
            "SELECT name, range_from, range_to FROM audit.event_partitions()"
            " WHERE NOT is_default AND range_to <= now() - %s::interval ORDER BY range_from",
            (KEEP,),
        ).fetchall()

    def events(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(c.reltuples), 0)::bigint FROM audit.event_partitions() AS p"
            " JOIN pg_class AS c ON c.oid = p.partition").fetchone()
        return int(row[0]) if row else 0

    def grow_to(self, target: int) -> None:
        """Add older months of month_rows events until the past months hold *target*."""
        months = self.months()
        held = self.month_rows * sum(1 for m in months if m[0] not in self.partial)
        oldest = months[0][1] if months else self._newest_past_month()
        self.conn.execute("SET synchronous_commit = off")
        while held < target:
            start = (oldest.astimezone(timezone.utc).replace(day=1) - timedelta(days=1)).replace(day=1)
            self.conn.execute("SELECT audit.ensure_partitions(%s, 1)", (start,))
            name = "events_" + start.strftime("%Y_%m")
            end = (start + timedelta(days=32)).replace(day=1)
            step = (end - start) / self.month_rows
            self.conn.execute(
                FILL.format(partition=name, entities=ENTITIES),
                {"first": self.next_id, "start": start, "step": step, "rows": self.month_rows},
            )
            self.next_id += self.month_rows
            held += self.month_rows
            oldest = start
        self.conn.execute("RESET synchronous_commit")
        log("analyze ...")
        self.conn.execute("ANALYZE audit.events")
        self.conn.execute("CHECKPOINT")

    def _newest_past_month(self) -> datetime:
        row = self.conn.execute(
            "SELECT date_trunc('month', (now() - %s::interval) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            (KEEP,)).fetchone()
        assert row is not None
        return row[0]

    def timed(self, writer: Writer, action: Callable[[], object]) -> tuple[float, float]:
        start = time.monotonic()
        action()
        end = time.monotonic()
        return end - start, writer.worst_between(start, end)

    def measure(self, writer: Writer, label: int) -> Row:
        months = self.months()
        row = Row(events=label, months=len(months))
        c = self.conn

        def record(name: str, result: tuple[float, float]) -> None:
            row.seconds[name], row.writer[name] = result

        samples = [self.timed(writer, lambda: c.execute("SELECT * FROM audit.maintain()").fetchall())
                   for _ in range(3)]
        record("maintain, nothing to do", _median(samples))

        ahead = c.execute("SELECT count(*) FROM audit.event_partitions()"
                          " WHERE range_from > now()").fetchone()[0]  # type: ignore[index]
        record("maintain, one partition ahead", self.timed(
            writer, lambda: c.execute("SELECT * FROM audit.maintain(%s)", (ahead + 1,)).fetchall()))

        month = c.execute(
            "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => %s))"
            " AT TIME ZONE 'UTC'", (self.future,)).fetchone()[0]  # type: ignore[index]
        self.future += 1
        c.execute(
            "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id)"
            " SELECT 'data', 'created', %s::timestamptz + g * interval '1 second', 'public.orders', g::text"
            " FROM generate_series(1, %s) AS g", (month, DEFAULT_ROWS))
        record(f"maintain, move {DEFAULT_ROWS:,} rows from default", self.timed(
            writer, lambda: c.execute("SELECT * FROM audit.maintain(0)").fetchall()))

        record("apply_retention, nothing due", _median([self.timed(
            writer, lambda: c.execute("SELECT * FROM audit.apply_retention(%s)",
                                      (months[0][2] + timedelta(days=364),)).fetchall())
            for _ in range(3)]))

        drops = []
        for name, _, end in months[:3]:
            as_of = c.execute("SELECT (%s::timestamptz AT TIME ZONE 'UTC' + %s::interval)"
                              " AT TIME ZONE 'UTC'", (end, KEEP)).fetchone()[0]  # type: ignore[index]
            dropped: list[tuple[object, ...]] = []

            def drop() -> None:
                dropped.extend(c.execute("SELECT * FROM audit.apply_retention(%s)",
                                         (as_of,)).fetchall())

            drops.append(self.timed(writer, drop))
            assert [d[0] for d in dropped] == [name], dropped
        record(f"apply_retention, drop a month of {self.month_rows:,}", _median(drops))

        name, _, end = months[3]
        c.execute("SELECT audit.place_hold('public.orders', %s, 'bench')", (HELD_ENTITY,))
        as_of = c.execute("SELECT (%s::timestamptz AT TIME ZONE 'UTC' + %s::interval)"
                          " AT TIME ZONE 'UTC'", (end, KEEP)).fetchone()[0]  # type: ignore[index]
        rebuilt: list[tuple[object, ...]] = []
        record("apply_retention, rebuild a month with held events", self.timed(
            writer, lambda: rebuilt.extend(
                c.execute("SELECT * FROM audit.apply_retention(%s)", (as_of,)).fetchall())))
        assert [(r[0], r[4] > 0) for r in rebuilt] == [(name, True)], rebuilt
        self.partial.add(name)
        c.execute("SELECT audit.release_hold('public.orders', %s, 'bench done')", (HELD_ENTITY,))
        return row


def _median(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s for s, _ in samples), max(w for _, w in samples)


def header(cluster: pgcluster.Cluster, settings: dict[str, str], month_rows: int) -> str:
    return (
        benchtools.describe(cluster.dsn(), settings) + "\n"
        f"{month_rows:,} events per month; policy {KEEP}; a writer inserts into an audited table"
        f" every {WRITER_PAUSE * 1000:.0f} ms"
    )


def report(rows: list[Row], head: str) -> str:
    names = list(rows[0].seconds)
    width = max(len(n) for n in names) + 2
    lines = [head, "", "time in ms (the longest insert of the writer during the operation, ms)", ""]
    lines.append(f"{'events in the log':<{width}}" + "".join(
        f"{f'{r.events / 1e6:g}M ({r.months} months)':>24}" for r in rows))
    for name in names:
        lines.append(f"{name:<{width}}" + "".join(
            f"{f'{r.seconds[name] * 1000:.0f} ({r.writer[name] * 1000:.0f})':>24}" for r in rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,30",
                        help="log sizes to measure at, in millions of events (default 1,10,30)")
    parser.add_argument("--month-rows", type=int, default=250_000,
                        help="events per month (default 250000)")
    parser.add_argument("--pg-version", type=int, default=17, help="PostgreSQL major version")
    args = parser.parse_args(argv)
    sizes = [int(float(s) * 1_000_000) for s in args.sizes.split(",")]
    settings = {
        "fsync": "on", "full_page_writes": "on", "synchronous_commit": "on",
        "shared_buffers": "1GB", "max_wal_size": "16GB", "checkpoint_timeout": "30min",
        "maintenance_work_mem": "256MB",
    }
    # On disk, not in memory: tens of millions of events do not belong in /dev/shm.
    cluster = benchtools.start_cluster(args.pg_version, settings)
    if cluster is None:
        return 1
    started = time.monotonic()
    try:
        bench = Bench(cluster, args.month_rows)
        bench.setup()
        writer = Writer(bench.dsn)
        rows = []
        for size in sizes:
            log(f"filling to {size:,} events ...")
            bench.grow_to(size)
            log(f"measuring at {size:,} events ({bench.events():,} in monthly partitions) ...")
            if writer.thread is None:
                writer.start()
            rows.append(bench.measure(writer, size))
        writer.close()
        print(report(rows, header(cluster, settings, args.month_rows)))
        log(f"done in {time.monotonic() - started:.0f} s")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
