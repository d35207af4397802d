"""Every fenced block of README.md and docs/*.md is in a language the tests
run (sh, cron, yaml, sql) or one they name as not run, with the reason; and
the reading of blocks and command lines the other docs tests rely on. No
database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doctools import (
    NOT_RUN,
    RUN_BY,
    Block,
    Registered,
    blocks,
    commands,
    match,
    with_test_dsn,
)


def test_every_block_is_in_a_language_the_tests_know() -> None:
    unknown = [f"{b.where}: ```{b.lang}" for b in blocks()
               if b.lang not in RUN_BY and b.lang not in NOT_RUN]
    assert unknown == [], "run these blocks in tests/docs, or add the language to NOT_RUN"


def test_the_docs_have_the_examples_the_tests_run() -> None:
    langs = {b.lang for b in blocks() if b.path == "README.md"}
    assert {"sh", "sql"} <= langs
    assert [b.lang for b in blocks() if b.path == "docs/ci.md"] == ["yaml"]


def test_blocks_are_read_with_their_file_line_and_language(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.docs import doctools

    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text("intro\n\n```sh\nauditsql status\n```\n\ntext\n```\nplain\n```\n",
                    encoding="utf-8")
    monkeypatch.setattr(doctools, "REPO", tmp_path)
    assert blocks([page]) == [Block("docs/page.md", 3, "sh", "auditsql status\n"),
                              Block("docs/page.md", 8, "", "plain\n")]
    page.write_text("```sh\nauditsql status\n", encoding="utf-8")
    with pytest.raises(ValueError, match="page.md:1: a fenced block is never closed"):
        blocks([page])


def test_commands_are_split_as_a_shell_splits_them() -> None:
    block = Block("x.md", 10, "sh", (
        "auditsql verify --dsn \"$DATABASE_URL\" --json > verify.json  # a comment\n"
        "\n"
        "auditsql attach users --exclude updated_at \\\n"
        "    --strict   # continued\n"
        "make demo\n"))
    found = commands(block)
    assert [(c.line, c.argv, c.stdout_to) for c in found] == [
        (11, ("auditsql", "verify", "--dsn", "$DATABASE_URL", "--json"), "verify.json"),
        (13, ("auditsql", "attach", "users", "--exclude", "updated_at", "--strict"), None),
        (15, ("make", "demo"), None),
    ]
    cron = Block("x.md", 1, "cron", "17 3 * * *  auditsql retention run >> /var/log/x.log 2>&1\n")
    [line] = commands(cron)
    assert line.argv == ("auditsql", "retention", "run") and line.stdout_to == "/var/log/x.log"


def test_example_dsns_are_replaced_in_place() -> None:
    dsn = "host=/tmp dbname=t"
    assert with_test_dsn(["retention", "set", "--dsn", "...", "--", "30 months"], dsn) == [
        "retention", "set", "--dsn", dsn, "--", "30 months"]
    assert with_test_dsn(["install", "--dsn=postgresql://admin@db.example.com/app"], dsn) == [
        "install", f"--dsn={dsn}"]
    assert with_test_dsn(["verify", "--dsn", "$DATABASE_URL"], dsn) == ["verify", "--dsn", dsn]
    with pytest.raises(ValueError, match="unknown variable"):
        with_test_dsn(["verify", "--junit", "$HOME/report.xml"], dsn)


def test_a_marker_names_one_block_and_every_block_needs_one() -> None:
    found, problems = match([Registered("README.md", "make test\n", None)], ("sh",), "here")
    assert found["README.md:make test\n"].text == "make test\n"  # the whole block wins
    assert any("not registered in here" in p for p in problems)
    _, problems = match([Registered("README.md", "no such text", None)], ("sh",), "here")
    assert any("no sh block contains 'no such text'" in p for p in problems)
    _, problems = match([Registered("README.md", "auditsql", None)], ("sh",), "here")
    assert any("blocks contain 'auditsql'" in p for p in problems)
