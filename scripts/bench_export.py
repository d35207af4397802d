"""Benchmark `auditsql export`: throughput, and memory as the log grows.

Starts a throwaway cluster, installs auditsql, and fills the log with data
events (written straight into the events table with generate_series: this
measures export, not capture), each with an actor, a request and before
and after rows of a few columns. At each size it runs the real command,
`auditsql export --format jsonl|csv --output FILE`, in a child process,
after one warm-up run, ``--runs`` times (the two formats in turn), and
reports the median wall time, events per second, the process's CPU time
(user and system, the server's not included), its peak memory (max RSS,
which should not grow with the number of events) and the load average
when the runs ended: the machine is shared, and the figures follow the
CPU left to the export.

Run with ``make bench-export``, or for example
``python -m scripts.bench_export --sizes 0.1,1`` (from the repository root).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from auditsql import installer
from auditsql.render import Settings
from scripts import benchtools

FILL = """
INSERT INTO audit.events (occurred_at, txid, category, action, entity_type, entity_id,
                          actor_id, actor_email, request_id, db_user, application_name,
                          before, after)
SELECT now() - interval '1 day' + g * interval '1 millisecond', 1000 + g / 10, 'data',
       'updated', 'public.orders', (g %% 50000)::text, 'user-' || (g %% 1000),
       'user-' || (g %% 1000) || '@example.com', 'req-' || (g / 10), 'bench', 'bench_export',
       jsonb_build_object('status', 'new', 'total', g * 1.5),
       jsonb_build_object('id', g %% 50000, 'status', 'shipped', 'total', g * 1.5,
                          'customer', 'Customer "' || (g %% 977) || '"', 'note', 'ok\\tnow')
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""


def log(message: str) -> None:
    print(f"[bench-export] {message}", file=sys.stderr, flush=True)


def export(dsn: str, fmt: str, target: Path) -> tuple[float, int, int, float]:
    """Run the command; returns seconds, events exported, max RSS in KiB
    and CPU seconds of the process."""
    script = Path(sys.executable).with_name("auditsql")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "auditsql"]
    started = time.monotonic()
    proc = subprocess.Popen([*command, "export", "--dsn", dsn, "--since", "2000-01-01",
                             "--format", fmt, "--output", str(target), "--tz", "UTC"],
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"export failed: {stderr}")
    events = int(stderr.split()[1])
    return seconds, events, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.1,1",
                        help="log sizes, in millions of events (default 0.1,1)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each format at each size; the median is reported")
    parser.add_argument("--pg-version", type=int, default=18, help="PostgreSQL major version")
    args = parser.parse_args(argv)
    sizes = [int(float(s) * 1_000_000) for s in args.sizes.split(",")]
    settings = {"shared_buffers": "512MB", "max_wal_size": "4GB", "synchronous_commit": "off"}
    cluster = benchtools.start_cluster(args.pg_version, settings)
    if cluster is None:
        return 1
    lines = [benchtools.describe(cluster.dsn(), settings), "",
             "| events | format | seconds | events/s | client CPU (s) | max RSS (MiB) "
             "| output (MiB) | load |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE export")
        dsn = cluster.dsn("export")
        with psycopg.connect(dsn) as conn:
            installer.install(conn, Settings())
        held = 0
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                log(f"filling to {size:,} events ...")
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(FILL, {"first": held + 1, "last": size})
                    conn.execute("VACUUM ANALYZE audit.events")
                held = size
                runs: dict[str, list[tuple[float, int, int, float]]] = {"jsonl": [], "csv": []}
                for fmt in runs:  # warm the cache
                    export(dsn, fmt, Path(tmp) / f"events.{fmt}")
                for _ in range(args.runs):
                    for fmt in runs:
                        runs[fmt].append(export(dsn, fmt, Path(tmp) / f"events.{fmt}"))
                load = os.getloadavg()[0]
                for fmt, done in runs.items():
                    seconds = statistics.median(r[0] for r in done)
                    events = done[0][1]
                    assert all(r[1] == events for r in done) and events >= size, (done, size)
                    lines.append(f"| {events:,} | {fmt} | {seconds:.2f} | "
                                 f"{events / seconds:,.0f} | "
                                 f"{statistics.median(r[3] for r in done):.2f} | "
                                 f"{max(r[2] for r in done) / 1024:.0f} | "
                                 f"{(Path(tmp) / f'events.{fmt}').stat().st_size / 2**20:.0f} | "
                                 f"{load:.1f} |")
                    log(lines[-1])
    finally:
        cluster.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
