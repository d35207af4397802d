"""What every benchmark report starts with: the machine and the server."""

from __future__ import annotations

import os
import platform
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
