"""What every benchmark report starts with: the machine and the server."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import psycopg


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
