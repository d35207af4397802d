"""Run the test suite once per available PostgreSQL major version.

Usage: python -m scripts.test_matrix [pytest args...] (from the repository root)

Versions come from ``tests.harness.pgcluster.find_bindirs()``; ``$AUDITSQL_PG_VERSIONS``
("14 15") restricts them, and ``$AUDITSQL_TEST_DSN`` means a single run
against that server. Ends with a per-version table and a line
``total: N passed, N failed, N skipped`` (errors count as failed). Exits
non-zero if a run failed, no version was found, or no run collected a test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tests.harness import pgcluster

ROOT = Path(__file__).resolve().parent.parent
NO_TESTS_COLLECTED = 5


@dataclass
class Target:
    """One matrix entry: a label and the environment overrides for its run."""

    label: str
    env: dict[str, str]


@dataclass
class Result:
    """Outcome of one pytest run."""

    label: str
    returncode: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode in (0, NO_TESTS_COLLECTED)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.errors


def requested_versions() -> set[int] | None:
    """Majors listed in ``$AUDITSQL_PG_VERSIONS``, or ``None`` for all."""
    raw = os.environ.get("AUDITSQL_PG_VERSIONS", "").strip()
    if not raw:
        return None
    return {int(v) for v in re.split(r"[\s,]+", raw) if v}


def find_targets() -> tuple[list[Target], str]:
    """Matrix entries, plus a reason when there are none."""
    if os.environ.get("AUDITSQL_TEST_DSN"):
        return [Target("dsn", {})], ""
    bindirs = pgcluster.find_bindirs()
    wanted = requested_versions()
    if not bindirs:
        return [], "no PostgreSQL binaries found (run `make pg-binaries` or set AUDITSQL_PG_BIN)"
    if wanted is not None:
        missing = sorted(wanted - bindirs.keys())
        if missing:
            return [], f"AUDITSQL_PG_VERSIONS asks for {missing}; found only {sorted(bindirs)}"
        bindirs = {k: v for k, v in bindirs.items() if k in wanted}
    return [Target(str(major), {"AUDITSQL_PG_BIN": str(path)})
            for major, path in bindirs.items()], ""


def read_junit(path: Path) -> tuple[int, int, int, int]:
    """(passed, failed, skipped, errors) from a pytest junit XML file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 0, 0, 0, 0
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "skipped": 0, "errors": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    passed = counts["tests"] - counts["failures"] - counts["skipped"] - counts["errors"]
    return max(passed, 0), counts["failures"], counts["skipped"], counts["errors"]


def run_one(target: Target, pytest_args: list[str]) -> Result:
    """Run pytest for *target*, streaming its output."""
    env = {**os.environ, **target.env}
    env.pop("AUDITSQL_PG_VERSION", None)
    print(f"\n===== PostgreSQL {target.label} =====", flush=True)
    with tempfile.TemporaryDirectory(prefix="auditsql-matrix-") as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", f"--junitxml={junit}", *pytest_args]
        start = time.monotonic()
        returncode = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        seconds = time.monotonic() - start
        passed, failed, skipped, errors = read_junit(junit)
    if not (returncode in (0, NO_TESTS_COLLECTED) or failed or errors):
        errors = 1  # pytest itself failed (usage error, crash, interrupt)
    return Result(target.label, returncode, passed, failed, skipped, errors, seconds)


def print_table(results: list[Result]) -> None:
    """Per-version summary table."""
    header = (f"{'version':<8} {'passed':>7} {'failed':>7} {'skipped':>8} {'errors':>7} "
              f"{'seconds':>8}  exit")
    print("\n" + header)
    print("-" * len(header))
    for r in results:
        print(f"{r.label:<8} {r.passed:>7} {r.failed:>7} {r.skipped:>8} {r.errors:>7} "
              f"{r.seconds:>8.1f}  {r.returncode}")


def main(argv: list[str]) -> int:
    """Run the matrix; return the process exit code."""
    targets, why = find_targets()
    if not targets:
        print(f"test matrix: {why}", file=sys.stderr)
        print("total: 0 passed, 0 failed, 0 skipped")
        return 1
    results = [run_one(t, argv) for t in targets]
    print_table(results)
    passed = sum(r.passed for r in results)
    failed = sum(r.failed + r.errors for r in results)
    skipped = sum(r.skipped for r in results)
    status = 0
    if any(not r.ok for r in results):
        bad = ", ".join(f"{r.label} (exit {r.returncode})" for r in results if not r.ok)
        print(f"test matrix: failing runs: {bad}", file=sys.stderr)
        status = 1
    if all(r.total == 0 for r in results):
        print("test matrix: no run collected any test", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
