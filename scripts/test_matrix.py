"""Run the test suite once per available PostgreSQL major version.

Usage: python -m scripts.test_matrix [pytest args...] (from the repository root)

Versions come from ``tests.harness.pgcluster.find_bindirs()``; ``$AUDITSQL_PG_VERSIONS``
("14 15") restricts them, and ``$AUDITSQL_TEST_DSN`` means a single run
against that server. Ends with a per-version table and a line
``total: N passed, N failed, N skipped`` (errors count as failed). Exits
non-zero if a run failed, no version was found, or no run collected a test.

Runs are independent (each starts its own cluster), so ``$AUDITSQL_TEST_JOBS``
of them run at once, by default one more than there are CPUs: a run keeps
about one CPU busy, its client and its server taking turns, and the one
more keeps every CPU busy until the last runs end, rather than one alone.
With more than one at a time, each run's output is printed whole when it
ends; with ``AUDITSQL_TEST_JOBS=1`` runs go one after the other, their
output streamed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.harness import pgcluster

ROOT = Path(__file__).resolve().parent.parent
NO_TESTS_COLLECTED = 5
# Set for every run but the newest version's: tests/integrations test
# Python-side behaviour (what the framework integrations send, and when),
# so one version is enough; tests/integrations/conftest.py skips them.
NEWEST_ONLY = "AUDITSQL_INTEGRATIONS_SKIP"


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
    newest = max(bindirs)
    return [Target(str(major), {"AUDITSQL_PG_BIN": str(path),
                                **({} if major == newest else {NEWEST_ONLY: str(newest)})})
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


def requested_jobs() -> int:
    """How many runs at once: ``$AUDITSQL_TEST_JOBS``, else one more than CPUs."""
    raw = os.environ.get("AUDITSQL_TEST_JOBS", "").strip()
    if not raw:
        return len(os.sched_getaffinity(0)) + 1
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"AUDITSQL_TEST_JOBS={raw!r}: expected a positive number")
    return int(raw)


def pytest_command(junit: Path, pytest_args: list[str]) -> list[str]:
    """The command of one run, writing its results to *junit*."""
    return [sys.executable, "-m", "pytest", f"--junitxml={junit}", *pytest_args]


# Serializes what concurrent runs print.
_PRINT = threading.Lock()


def run_one(target: Target, pytest_args: list[str], streamed: bool) -> Result:
    """Run pytest for *target*: its output streamed, or printed whole when
    it ends (for runs that share the terminal)."""
    env = {**os.environ, **target.env}
    env.pop("AUDITSQL_PG_VERSION", None)
    heading = f"\n===== PostgreSQL {target.label} ====="
    with tempfile.TemporaryDirectory(prefix="auditsql-matrix-") as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = pytest_command(junit, pytest_args)
        start = time.monotonic()
        if streamed:
            print(heading, flush=True)
            returncode = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        else:
            with _PRINT:
                print(f"PostgreSQL {target.label}: started", flush=True)
            log = Path(tmp) / "output.txt"
            with open(log, "wb") as out:
                returncode = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT).returncode
            with _PRINT:
                print(heading, flush=True)
                sys.stdout.write(log.read_text(encoding="utf-8", errors="replace"))
                sys.stdout.flush()
        seconds = time.monotonic() - start
        passed, failed, skipped, errors = read_junit(junit)
    if not (returncode in (0, NO_TESTS_COLLECTED) or failed or errors):
        errors = 1  # pytest itself failed (usage error, crash, interrupt)
    return Result(target.label, returncode, passed, failed, skipped, errors, seconds)


def run_all(targets: list[Target], pytest_args: list[str], jobs: int) -> list[Result]:
    """Run every target, *jobs* at a time; results in the targets' order."""
    jobs = min(jobs, len(targets))
    if jobs == 1:
        return [run_one(t, pytest_args, streamed=True) for t in targets]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda t: run_one(t, pytest_args, streamed=False), targets))


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
    try:
        jobs = requested_jobs()
    except ValueError as exc:
        targets, why = [], str(exc)
    else:
        targets, why = find_targets()
    if not targets:
        print(f"test matrix: {why}", file=sys.stderr)
        print("total: 0 passed, 0 failed, 0 skipped")
        return 1
    start = time.monotonic()
    results = run_all(targets, argv, jobs)
    print_table(results)
    print(f"wall time: {time.monotonic() - start:.1f} s, {min(jobs, len(targets))} at a time")
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
