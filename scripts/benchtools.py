"""What every benchmark report starts with: the machine and the server."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

from auditsql import installer
from auditsql.render import Settings
from tests.harness import pgcluster


def describe(dsn: str, settings: dict[str, str]) -> str:
    """Two lines: cores, CPU and kernel; PostgreSQL version and settings."""
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    version = row[0] if row else "unknown"
    shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return (f"machine: {os.cpu_count()} cores, {cpu}, {platform.machine()}, "
            f"Linux {platform.release()}\nPostgreSQL {version}; {shown}")


def start_cluster(pg_version: int, settings: dict[str, str]) -> pgcluster.Cluster | None:
    """A throwaway cluster of that major version with ``settings``, its data
    on disk (under the system's temporary folder, not /dev/shm), so that
    commits cost what they cost; None, said on stderr, without binaries."""
    bindir = pgcluster.find_bindir(pg_version)
    if bindir is None:
        print(f"no PostgreSQL {pg_version} binaries: run `make pg-binaries` or set "
              "AUDITSQL_PG_BIN", file=sys.stderr)
        return None
    os.environ.setdefault(pgcluster.ENV_TMPDIR, tempfile.gettempdir())
    return pgcluster.start_cluster(bindir, settings=settings)


def pgbench_conn_args(cluster: pgcluster.Cluster, db: str) -> list[str]:
    """pgbench's connection arguments for database ``db`` of ``cluster``."""
    return ["-h", str(cluster.sockdir), "-p", str(cluster.port), "-U", cluster.superuser, db]


def attach_pgbench(conn: psycopg.Connection, also: tuple[str, ...] = ()) -> None:
    """Attach pgbench's four tables (and ``also``) in row mode. pgbench_history
    has no key at all: tid, aid and mtime are trusted to identify its rows."""
    installer.attach(conn, ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", *also],
                     Settings())
    installer.attach(conn, ["pgbench_history"], Settings(), ["tid", "aid", "mtime"],
                     policies=installer.Policies(trust_id_columns=True))


# Student's t at 97.5 %, by degrees of freedom (1 to 30): the two-sided
# 95 % interval of a mean of few repetitions.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def ratio_interval(ratios: list[float]) -> tuple[float, float, float]:
    """The geometric mean of per-repetition ratios and its 95 % interval
    (Student's t over their logarithms): whether a ratio differs from 1
    beyond the run-to-run noise is whether the interval leaves out 1."""
    if len(ratios) < 2:
        raise ValueError("an interval needs at least two repetitions")
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    t = _T975[len(logs) - 2] if len(logs) - 1 <= len(_T975) else 1.96  # by degrees of freedom
    half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
