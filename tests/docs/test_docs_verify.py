"""docs/verify.md's examples of what verify prints are what it prints: the
text report, the JSON report and the fingerprint of a comment, made by the
run the text describes ("..." in the text report stands for lines left
out)."""

from __future__ import annotations

import json
import re

from auditsql import __version__
from auditsql.fingerprint import FINGERPRINT
from tests.docs.doctools import Block, Ctx, Registered, match

MODULE = "tests/docs/test_docs_verify.py"


def example(lang: str, marker: str) -> Block:
    found, problems = match([Registered("docs/verify.md", marker, None)], (lang,), MODULE)
    assert len(found) == 1, problems
    return next(iter(found.values()))


def fits(shown: list[str], real: list[str]) -> bool:
    """Whether the real lines are the example's, each "..." standing for
    any number of lines."""
    if not shown:
        return not real
    if shown[0] == "...":
        return any(fits(shown[1:], real[i:]) for i in range(len(real) + 1))
    return bool(real) and shown[0] == real[0] and fits(shown[1:], real[1:])


def test_fits() -> None:
    assert fits(["a", "...", "d"], ["a", "b", "c", "d"])
    assert fits(["a", "...", "b"], ["a", "b"])
    assert not fits(["a", "...", "d"], ["a", "b", "c"])
    assert not fits(["a", "c"], ["a", "b", "c"])


def disabled_insert_trigger(ctx: Ctx) -> None:
    """The run verify.md shows: `orders` attached with --capture statement,
    its insert trigger disabled, everything else in order."""
    for step in ("CREATE TABLE orders (id bigint PRIMARY KEY, status text)",
                 "auditsql install --retention saas",
                 "auditsql attach orders --capture statement"):
        ctx.step(step)
    ctx.execute("ALTER TABLE orders DISABLE TRIGGER auditsql_capture_insert")


# The example comes from a server without pg_cron. Where pg_cron runs in
# another database (the tests' PostgreSQL 15), verify cannot read its job
# from the audited database and retention.job_scheduled warns: the one
# difference, taken out of the real report before comparing.
JOB_WARNING = "WARN  retention.job_scheduled "


def without_job_warning(lines: list[str]) -> list[str]:
    if not any(line.startswith(JOB_WARNING) for line in lines):
        return lines
    at = next(i for i, line in enumerate(lines) if line.startswith(JOB_WARNING))
    rest = lines[at + 1:]
    while rest and rest[0].startswith(" "):
        rest = rest[1:]
    summary = re.fullmatch(r"(\d+) checks: (\d+) passed, (\d+) warnings, (\d+) failed", rest[-1])
    assert summary, rest[-1]
    total, passed, warned, failed = map(int, summary.groups())
    rest[-1] = f"{total} checks: {passed + 1} passed, {warned - 1} warnings, {failed} failed"
    return lines[:at] + rest


def test_the_text_and_json_reports_are_what_verify_prints(ctx: Ctx) -> None:
    disabled_insert_trigger(ctx)
    res = ctx.cli("verify")
    assert res.code == 1, str(res)
    shown = example("text", "FAIL  triggers.capture").text.splitlines()
    real_lines = without_job_warning(res.stdout.splitlines())
    assert fits(shown, real_lines), f"docs/verify.md shows\n{shown}\nverify prints\n{res}"

    res = ctx.cli("verify", "--json")
    real = json.loads(res.stdout)
    if any(c["id"] == "retention.job_scheduled" and c["status"] == "warn" for c in real["checks"]):
        assert ctx.cron_database is not None
        real["summary"]["pass"] += 1
        real["summary"]["warn"] -= 1
    documented = json.loads(example("json", '"format": 1').text)
    assert {k: v for k, v in documented.items() if k != "checks"} == {
        k: v for k, v in real.items() if k != "checks"}
    by_id = {c["id"]: c for c in real["checks"]}
    for check in documented["checks"]:
        assert check == by_id[check["id"]]


def test_the_fingerprint_example_has_the_shape_of_a_real_comment(ctx: Ctx) -> None:
    ctx.step("auditsql install")
    [(comment,)] = ctx.rows("SELECT obj_description('audit.events'::regclass, 'pg_class')")
    description, stamp = comment.splitlines()
    shown = example("text", "sha256:").text.splitlines()
    assert shown[0] == description
    documented, real = FINGERPRINT.match(shown[1].replace("...", "0" * 56)), FINGERPRINT.match(stamp)
    assert documented and real
    assert documented["version"] == real["version"] == __version__
    assert len(documented["source"]) == len(real["source"])
