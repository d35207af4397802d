"""docs/architecture.md names real files, and says where every command
lives, over which method of auditsql.Audit. No database."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from auditsql import Audit
from auditsql.cli import app

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "architecture.md"
TEXT = PAGE.read_text(encoding="utf-8")


def commands() -> set[str]:
    """Every command by its full name ("status", "retention set", ...)."""
    found: set[str] = set()

    def walk(group: typer.core.TyperGroup, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                found.add(f"{prefix}{name}")

    walk(typer.main.get_command(app), "")  # type: ignore[arg-type]
    return found


def command_rows() -> dict[str, list[str]]:
    """The table of commands: command -> [method, python, sql]."""
    section = TEXT.split("## Where each command lives", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_path_named_exists() -> None:
    paths = set(re.findall(r"`((?:sql|auditsql|tests|docs)/[\w./*-]*)`", TEXT))
    assert paths
    for path in sorted(paths):
        if "*" in path:
            assert list(REPO.glob(path)), path
        else:
            assert (REPO / path).exists(), path


def test_every_command_has_its_row() -> None:
    assert set(command_rows()) == commands()


def test_each_row_names_a_method_of_audit_and_the_sql() -> None:
    for command, (method, python, sql) in command_rows().items():
        assert callable(getattr(Audit, method.strip("`"))), command
        assert python.startswith("`auditsql/"), command
        assert "sql/" in sql or "pg_cron" in sql, command
