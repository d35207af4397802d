"""docs/verify.md lists every check of `auditsql verify`, in the order they
run, and every count of checks the docs state is the registry's. No
database."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditsql import checks

REPO = Path(__file__).resolve().parents[2]
VERIFY_MD = REPO / "docs" / "verify.md"
ON_REQUEST = ("tables.expected", "tables.all",  # run only with --expect / --all-tables
              "integrity.chain", "integrity.digests")  # and --integrity / --digest
ALWAYS = [c for c in checks.REGISTRY if c not in ON_REQUEST]
RETENTION = [c for c in checks.REGISTRY if c.startswith("retention.")]


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next ``## ``."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def test_the_checks_table_lists_every_registered_check_in_order() -> None:
    table = section(read(VERIFY_MD), "The checks")
    listed = re.findall(r"^\| `([a-z_.]+)` \|", table, re.MULTILINE)
    assert listed == list(checks.REGISTRY)
    for line in table.splitlines():
        if line.startswith("| `"):
            assert len(line.split(" | ")) == 4, f"a check needs all four columns: {line}"


NUMBERS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    " fifteen sixteen seventeen eighteen nineteen twenty".split())}
COUNT = re.compile(rf"\b(\d+|{'|'.join(NUMBERS)})\s+checks\b", re.IGNORECASE)


def number(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text.lower()]


@dataclass(frozen=True)
class Claim:
    """A count of checks the docs state, and what it must equal."""

    path: str
    pattern: str  # with the count as group 1
    expected: int


CLAIMS = [
    Claim("docs/verify.md", r"the first (\d+)\s+run every time", len(ALWAYS)),
    # The example report, from a run without --expect or --all-tables.
    Claim("docs/verify.md", r"^(\d+) checks: \d+ passed, \d+ warnings, \d+ failed$", len(ALWAYS)),
    Claim("docs/retention.md", r"turns them into (\w+) checks", len(RETENTION)),
]


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"{c.path}:{c.pattern[:30]}")
def test_each_count_of_checks_the_docs_state_is_the_registry_s(claim: Claim) -> None:
    found = re.findall(claim.pattern, read(REPO / claim.path), re.MULTILINE)
    assert found, f"{claim.path} no longer says {claim.pattern!r}: update CLAIMS"
    assert [number(n) for n in found] == [claim.expected] * len(found)


def test_every_count_of_checks_in_the_docs_is_a_known_claim() -> None:
    """A new sentence counting checks must be added to CLAIMS."""
    unknown = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        if path.name == "cli.md":  # generated from --help
            continue
        text = read(path)
        known = [m.span(1) for c in CLAIMS if REPO / c.path == path
                 for m in re.finditer(c.pattern, text, re.MULTILINE)]
        for m in COUNT.finditer(text):
            if not any(start <= m.start(1) < end for start, end in known):
                line = text.count("\n", 0, m.start()) + 1
                unknown.append(f"{path.relative_to(REPO)}:{line}: {m.group(0)!r}")
    assert unknown == []


def test_the_example_reports_add_up() -> None:
    text = read(VERIFY_MD)
    for total, *parts in re.findall(r"^(\d+) checks: (\d+) passed, (\d+) warnings, (\d+) failed$",
                                    text, re.MULTILINE):
        assert int(total) == sum(map(int, parts))
    report = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL)[1])
    assert sum(report["summary"].values()) == len(ALWAYS)
    assert {c["id"] for c in report["checks"]} <= set(checks.REGISTRY)


def test_docs_retention_md_names_the_retention_checks() -> None:
    text = read(REPO / "docs" / "retention.md")
    paragraph = text[text.index("turns them into"):].split("\n\n", 1)[0]
    assert sorted(re.findall(r"`(retention\.[a-z_]+)`", paragraph)) == sorted(RETENTION)
