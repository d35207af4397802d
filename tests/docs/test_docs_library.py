"""docs/library.md: its example runs, and its two tables (methods, errors)
say what auditsql.Audit and auditsql.errors are."""

from __future__ import annotations

import inspect
import re

import psycopg
import pytest

import auditsql
from auditsql import Audit, errors
from auditsql.cli.output import exit_code_for
from tests.docs.doctools import REPO, Ctx, blocks

PAGE = REPO / "docs" / "library.md"


def page_blocks(lang: str) -> list[str]:
    return [b.text for b in blocks([PAGE]) if b.lang == lang]


def table_rows(heading: str) -> list[list[str]]:
    """The rows of the table whose header row starts with ``| heading |``."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_example_runs(ctx: Ctx) -> None:  # noqa: F811
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric, updated_at timestamptz)")
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, updated_at timestamptz)")
    example, reading = page_blocks("python")
    exec(compile(example, f"{PAGE}:example", "exec"), {"DSN": ctx.dsn})  # noqa: S102
    with Audit(ctx.dsn) as audit:
        assert [t.entity_type for t in audit.tables()] == ["public.orders", "public.users"]
        assert audit.policy() is not None
    # The reading example: the three orders become snapshot events.
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO orders SELECT g, g, NULL FROM generate_series(1, 3) AS g")
    exec(compile(reading, f"{PAGE}:reading", "exec"), {"DSN": ctx.dsn})  # noqa: S102
    with psycopg.connect(ctx.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM audit.events WHERE action = 'snapshot'"
                            ).fetchone() == (3,)


def test_every_method_is_in_the_table_and_every_row_is_a_method() -> None:
    listed = set()
    for row in table_rows("method"):
        listed |= set(re.findall(r"`(\w+)\(", row[0]))
    public = {name for name, _ in inspect.getmembers(Audit, inspect.isfunction)
              if not name.startswith("_")} - {"close"}
    assert listed == public


@pytest.mark.parametrize("row", table_rows("error"), ids=lambda row: row[0])
def test_each_error_row_names_real_errors_and_their_exit_code(row: list[str]) -> None:
    names = re.findall(r"`(\w+)`", row[0])
    assert names
    for name in names:
        error = getattr(errors, name)
        assert issubclass(error, errors.AuditsqlError)
        assert exit_code_for(error("x")) == int(row[1]), name


def test_every_error_is_in_the_table() -> None:
    listed = {n for row in table_rows("error") for n in re.findall(r"`(\w+)`", row[0])}
    defined = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.AuditsqlError)
               and value is not errors.AuditsqlError}
    assert listed == defined


def test_audit_is_exported() -> None:
    assert auditsql.Audit is Audit and "Audit" in auditsql.__all__
