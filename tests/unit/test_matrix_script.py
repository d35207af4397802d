"""scripts/test_matrix.py: runs at once, each printed whole, the table in
the targets' order; one at a time, streamed; a bad AUDITSQL_TEST_JOBS is
refused. The runs here are of a stand-in for pytest that naps, prints and
writes its JUnit report, not of the suite."""

from __future__ import annotations

import os
import sys

import pytest

from scripts import test_matrix
from scripts.test_matrix import Target

# A run: naps $NAP seconds, says so, and reports 2 passed and 1 skipped.
STAND_IN = """
import os, sys, time
time.sleep(float(os.environ["NAP"]))
print("napped", os.environ["NAP"], "then", *sys.argv[2:])
with open(sys.argv[1], "w") as junit:
    junit.write('<testsuites><testsuite tests="3" failures="0" skipped="1" errors="0"/></testsuites>')
"""


@pytest.fixture(autouse=True)
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_matrix, "pytest_command", lambda junit, args: [
        sys.executable, "-c", STAND_IN, str(junit), *args])


def targets(*naps: str) -> list[Target]:
    return [Target(f"v{i}", {"NAP": nap}) for i, nap in enumerate(naps)]


def test_runs_at_once_are_printed_whole_and_tabled_in_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    # v0 ends last, so its output comes second, but its row comes first.
    results = test_matrix.run_all(targets("0.5", "0"), ["-q"], jobs=2)
    assert [(r.label, r.passed, r.skipped, r.failed, r.errors, r.returncode)
            for r in results] == [("v0", 2, 1, 0, 0, 0), ("v1", 2, 1, 0, 0, 0)]
    assert results[0].seconds >= 0.5
    out = capsys.readouterr().out
    started = [line for line in out.splitlines() if line.endswith(": started")]
    assert sorted(started) == ["PostgreSQL v0: started", "PostgreSQL v1: started"]
    assert out.split("\n===== PostgreSQL ")[1:] == [
        "v1 =====\nnapped 0 then -q\n", "v0 =====\nnapped 0.5 then -q\n"]


def test_one_at_a_time_streams_in_order(capfd: pytest.CaptureFixture[str]) -> None:
    results = test_matrix.run_all(targets("0", "0"), [], jobs=1)
    assert [r.label for r in results] == ["v0", "v1"]
    assert capfd.readouterr().out == (
        "\n===== PostgreSQL v0 =====\nnapped 0 then\n\n===== PostgreSQL v1 =====\nnapped 0 then\n")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_number_of_jobs_is_refused(value: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUDITSQL_TEST_JOBS", value)
    assert test_matrix.main([]) == 1
    captured = capsys.readouterr()
    assert captured.err == (f"test matrix: AUDITSQL_TEST_JOBS={value!r}:"
                            " expected a positive number\n")
    assert captured.out == "total: 0 passed, 0 failed, 0 skipped\n"


def test_jobs_default_to_one_more_than_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITSQL_TEST_JOBS", raising=False)
    assert test_matrix.requested_jobs() == len(os.sched_getaffinity(0)) + 1
    monkeypatch.setenv("AUDITSQL_TEST_JOBS", "3")
    assert test_matrix.requested_jobs() == 3


def test_integrations_run_on_the_newest_version_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run but the newest version's is told to skip tests/integrations."""
    from pathlib import Path

    monkeypatch.delenv("AUDITSQL_TEST_DSN", raising=False)
    monkeypatch.delenv("AUDITSQL_PG_VERSIONS", raising=False)
    monkeypatch.setattr(test_matrix.pgcluster, "find_bindirs",
                        lambda: {15: Path("/pg15/bin"), 18: Path("/pg18/bin")})
    found, reason = test_matrix.find_targets()
    assert reason == ""
    assert [(t.label, t.env.get(test_matrix.NEWEST_ONLY)) for t in found] == [
        ("15", "18"), ("18", None)]
