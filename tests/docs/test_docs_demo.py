"""`make demo` (python -m scripts.demo), the first command the README offers, runs
to the end on the PostgreSQL version under test and shows what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from auditsql import __version__, checks
from tests.docs.doctools import REPO
from tests.harness.server import Server

# The rows of the "Who changed what" table: actor, role, action, record,
# changed columns, request (the time column aside).
LOG = [
    ("alice@example.com", "admin", "created", "public.customers 1", "", "req-alice-1"),
    ("alice@example.com", "admin", "created", "public.customers 2", "", "req-alice-1"),
    ("alice@example.com", "admin", "created", "public.orders 1001", "", "req-alice-1"),
    ("alice@example.com", "admin", "created", "public.orders 1002", "", "req-alice-1"),
    ("bob@example.com", "support", "updated", "public.orders 1001", "status", "req-bob-1"),
    ("bob@example.com", "support", "updated", "public.customers 2", "tier", "req-bob-1"),
    ("alice@example.com", "admin", "deleted", "public.orders 1002", "", "req-alice-2"),
]


def test_demo_runs_on_the_server_under_test(pg: Server) -> None:
    if pg.cluster is None:
        pytest.skip("the demo starts a cluster of its own from local server binaries")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUDITSQL_", "PG")) and k not in ("COLUMNS", "LINES")}
    env.update(AUDITSQL_PG_BIN=str(pg.cluster.bindir), PYTHONUNBUFFERED="1",
               PYTHONIOENCODING="utf-8")
    # One stream, as on a terminal: the commands' diagnostics go to stderr.
    proc = subprocess.run([sys.executable, "-m", "scripts.demo"], env=env, cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          encoding="utf-8", stdin=subprocess.DEVNULL, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    lines = [line.rstrip() for line in out.splitlines()]

    assert lines[0] == f"throwaway PostgreSQL {pg.version_num // 10000} cluster started"
    commands = [line for line in lines if line.startswith("$ ")]
    assert commands == [
        "$ auditsql install",
        "$ auditsql retention set saas",
        "$ auditsql attach customers orders",
        "$ auditsql status",
        "$ auditsql verify --expect customers --expect orders",
    ]
    for shown in (f"auditsql {__version__} installed in schema audit",
                  "retention policy: saas (keep 3 years); the next retention run will remove"
                  " nothing",
                  "attached public.customers", "attached public.orders",
                  "retention: saas (keep 3 years)",
                  "Who modified order 1001?",
                  "  bob@example.com updated it: status new -> refunded"):
        assert shown in lines, f"{shown!r} not shown\n{out}"

    table = [tuple(cell.strip() for cell in line.split("│")[2:-1])
             for line in lines if re.match(r"│ \d\d:\d\d:\d\d │", line)]
    assert table == LOG, out

    verify = lines[lines.index(commands[-1]) + 1:]
    assert not [line for line in verify if line.startswith("FAIL")], out
    assert "PASS  retention.policy_set" in "\n".join(verify)
    # All but tables.all and the integrity checks (the demo does not ask for them).
    ran = len([c for c in checks.REGISTRY if c != "tables.all" and not c.startswith("integrity.")])
    assert re.search(rf"^{ran} checks: \d+ passed, \d+ warnings, 0 failed$", "\n".join(verify),
                     re.MULTILINE), out
    assert re.fullmatch(r"demo finished in [\d.]+ s; cluster removed", lines[-1]), out
