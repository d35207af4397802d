"""Benchmark the hash chain (docs/integrity.md): how fast sealing hashes
events (a log of inserts, and the log of pgbench's tpcb-like transaction),
and how long verifying a large log takes and how much memory it needs: in
the server (``audit.verify_chain()``), in ``auditsql verify --integrity``
and in the standalone script of docs/integrity.md.

``make bench`` runs it after the write figures (scripts/bench.py), which
also time tpcb-like with sealing every few seconds against without it. On
its own: ``python -m scripts.bench_integrity --events 10000000``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from auditsql import installer
from auditsql.render import Settings
from scripts import benchtools
from tests.harness import pgcluster

REPO = Path(__file__).resolve().parents[1]
CHUNK = 1_000_000  # events written per statement while building the log


@dataclass(frozen=True)
class Timed:
    """One measured run: seconds, and the peak resident memory in MiB of
    the process that did the work."""

    seconds: float
    max_rss_mib: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(dsn: str, events: int) -> float:
    """A log of ``events`` events (statement-mode inserts of a five-column
    table); returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        installer.install(conn, Settings())
        conn.execute("CREATE TABLE bulk (id bigint PRIMARY KEY, a integer, b text,"
                     " c numeric(12, 2), d timestamptz)")
        conn.execute("SELECT audit.attach('bulk', NULL, 'statement')")
        done = 0
        while done < events:
            n = min(CHUNK, events - done)
            conn.execute(f"INSERT INTO bulk SELECT g, g % 1000, md5(g::text), g * 1.5, now()"
                         f" FROM generate_series({done + 1}, {done + n}) AS g")
            done += n
        conn.execute("VACUUM ANALYZE audit.events")
    return time.perf_counter() - started


def build_tpcb(cluster: pgcluster.Cluster, db: str, transactions: int = 100_000) -> None:
    """A log of pgbench's tpcb-like transaction (three updates and one
    insert each), all four tables audited in row mode: the mix `make bench`
    writes, with two images for most events."""
    pgbench = str(cluster.bindir / "pgbench")
    subprocess.run([pgbench, "-i", "-q", "-s", "4", *benchtools.pgbench_conn_args(cluster, db)],
                   check=True, capture_output=True)
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        installer.install(conn, Settings())
        benchtools.attach_pgbench(conn)
    subprocess.run([pgbench, "-n", "-c", "2", "-j", "2", "-t", str(transactions // 2),
                    *benchtools.pgbench_conn_args(cluster, db)], check=True, capture_output=True)
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit.events")


def cpu_seconds(pid: int) -> float:
    """A server process's CPU time so far (user and system): what the work
    cost, whatever else the machine was doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seal_rate(dsn: str) -> tuple[int, float, float]:
    """Seal everything: (events sealed, seconds, CPU seconds of the backend)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pid = int(row[0])
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        row = conn.execute("SELECT events FROM audit.seal()").fetchone()
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
    assert row is not None
    return int(row[0]), elapsed, cpu


def _private_mib(pid: int) -> float:
    """A server process's private resident memory now (RssAnon): what it
    allocated itself, without the shared buffers it touched."""
    match = re.search(r"RssAnon:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def verify_in_sql(dsn: str) -> Timed:
    """``SELECT * FROM audit.verify_chain()``, and the backend's peak
    private memory, sampled every 50 ms."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pid = int(row[0])
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _private_mib(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        try:
            found = conn.execute("SELECT count(*) FROM audit.verify_chain()").fetchone()
        finally:
            elapsed = time.perf_counter() - started
            done.set()
            sampler.join()
    assert found is not None and found[0] == 0, f"verify_chain found {found}"
    return Timed(elapsed, peak[0])


def _timed_process(argv: list[str]) -> Timed:
    """A child process, its wall time and peak RSS (from wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}:\n{out[0].decode()[-2000:]}\n{err}")
    return Timed(elapsed, usage.ru_maxrss / 1024)


def verify_cli(dsn: str) -> Timed:
    """``auditsql verify --integrity``: the client's peak memory."""
    return _timed_process([sys.executable, "-m", "auditsql", "verify", "--dsn", dsn,
                           "--integrity"])


def standalone_script() -> str:
    """docs/integrity.md's verification script, as its text."""
    text = (REPO / "docs" / "integrity.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(\"\"\"Verify an auditsql hash chain.*?)```", text, re.DOTALL)
    assert match, "docs/integrity.md has no verification script"
    return match.group(1)


def verify_script(dsn: str) -> Timed:
    path = Path(tempfile.mkstemp(suffix=".py")[1])
    path.write_text(standalone_script(), encoding="utf-8")
    try:
        return _timed_process([sys.executable, str(path), dsn])
    finally:
        path.unlink()


def measure(cluster: pgcluster.Cluster, events: int) -> list[str]:
    """Build a log of ``events`` events, seal it, verify it three ways;
    the report's lines."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        for db in ("b_integrity", "b_integrity_tpcb"):
            conn.execute(f"DROP DATABASE IF EXISTS {db}")
            conn.execute(f"CREATE DATABASE {db}")
    log("integrity: writing a tpcb-like log ...")
    build_tpcb(cluster, "b_integrity_tpcb")
    log("integrity: sealing it ...")
    mixed, mixed_seconds, mixed_cpu = seal_rate(cluster.dsn("b_integrity_tpcb"))
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE b_integrity_tpcb")
    dsn = cluster.dsn("b_integrity")
    log(f"integrity: writing {events:,} events ...")
    built = build(dsn, events)
    log("integrity: sealing ...")
    sealed, seal_seconds, seal_cpu = seal_rate(dsn)
    log("integrity: verifying in SQL ...")
    in_sql = verify_in_sql(dsn)
    log("integrity: verifying with auditsql verify --integrity ...")
    cli = verify_cli(dsn)
    log("integrity: verifying with the standalone script ...")
    script = verify_script(dsn)
    return [
        f"integrity, {sealed:,} events (written in {built:.0f} s, {sealed / built:,.0f} events/s):",
        f"  seal: {seal_seconds:.1f} s, {sealed / seal_seconds:,.0f} events/s;"
        f" the backend's CPU time {seal_cpu:.1f} s, {sealed / max(seal_cpu, 0.01):,.0f} events"
        " per CPU second",
        f"  seal, tpcb-like log of {mixed:,} events: {mixed_seconds:.1f} s,"
        f" {mixed / mixed_seconds:,.0f} events/s; the backend's CPU time {mixed_cpu:.1f} s,"
        f" {mixed / max(mixed_cpu, 0.01):,.0f} events per CPU second",
        f"  verify_chain() in SQL: {in_sql.seconds:.1f} s"
        f" ({sealed / in_sql.seconds:,.0f} events/s), backend peak private memory {in_sql.max_rss_mib:.0f} MiB",
        f"  auditsql verify --integrity: {cli.seconds:.1f} s, client peak RSS"
        f" {cli.max_rss_mib:.0f} MiB",
        f"  docs/integrity.md script: {script.seconds:.1f} s"
        f" ({sealed / script.seconds:,.0f} events/s), peak RSS {script.max_rss_mib:.0f} MiB",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the log")
    parser.add_argument("--pg-version", type=int, default=15, help="PostgreSQL major version")
    args = parser.parse_args(argv)
    settings = {"shared_buffers": "512MB", "max_wal_size": "8GB", "synchronous_commit": "off"}
    cluster = benchtools.start_cluster(args.pg_version, settings)
    if cluster is None:
        return 1
    try:
        before = os.getloadavg()[0]
        lines = measure(cluster, args.events)
        print(benchtools.describe(cluster.dsn(), settings))
        # Other work on the machine moves every figure: say how much there was.
        print(f"load average (1 min): {before:.2f} before, {os.getloadavg()[0]:.2f} after")
        print("\n".join(lines))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
