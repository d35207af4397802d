"""docs/library.md: its examples run and do what they say, and its two
tables (methods, errors) say what auditsql.Audit and auditsql.errors are."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import keyword
import re
import typing
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

import auditsql
from auditsql import Audit, errors, set_actor
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


# User 7 as the log recorded them two days ago, by u-1 (written into the log
# directly, as no write can be dated in the past); the row is in the table
# from before it was attached. updated_at, which the example excludes, is
# in the event, as in an admin's.
USER_7_CREATED = (
    "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id,"
    " actor_id, after) VALUES ('data', 'created', now() - interval '2 days', 'public.users',"
    " '7', 'u-1', '{\"id\": 7, \"role\": \"member\", \"updated_at\": null}')")


def test_the_example_runs(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric, updated_at timestamptz)")
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, role text, updated_at timestamptz)")
        conn.execute("INSERT INTO users VALUES (7, 'member', NULL)")
    example, reading = page_blocks("python")
    exec(compile(example, f"{PAGE}:example", "exec"), {"DSN": ctx.dsn})  # noqa: S102
    with Audit(ctx.dsn) as audit:
        assert [t.entity_type for t in audit.tables()] == ["public.orders", "public.users"]
        assert audit.policy() is not None
    # The reading example: user 7, created two days ago, made an admin by
    # u-42 now; the three orders become snapshot events.
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        conn.execute(USER_7_CREATED)
        conn.execute("INSERT INTO orders SELECT g, g, NULL FROM generate_series(1, 3) AS g")
    with psycopg.connect(ctx.dsn) as conn, conn.cursor() as cur:
        set_actor(cur, "u-42")
        cur.execute("UPDATE users SET role = 'admin', updated_at = now() WHERE id = 7")
    capsys.readouterr()
    names: dict[str, Any] = {"DSN": ctx.dsn}
    exec(compile(reading, f"{PAGE}:reading", "exec"), names)  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    # One line per change of user 7's role, oldest first: when, who, from, to.
    changes = [line.rsplit(" ", 3) for line in printed[:-1]]
    assert [tuple(c[1:]) for c in changes] == [("u-1", "None", "member"),
                                               ("u-42", "member", "admin")], printed
    now = datetime.now(timezone.utc)
    when = [datetime.fromisoformat(c[0]) for c in changes]
    two_days_ago = now - timedelta(days=2)
    assert abs(when[0] - two_days_ago) < timedelta(minutes=5), when
    assert now - timedelta(minutes=5) < when[1] <= now, when
    assert printed[-1] == "3 rows"
    # u-42's events of the week: the change of role.
    assert [(e.action, e.entity_type, e.entity_id, e.actor_id, e.before["role"], e.after["role"])
            for e in names["done"]] == [("updated", "public.users", "7", "u-42", "member", "admin")]
    # User 7 a day ago: as created, without the excluded column.
    assert names["yesterday"] == {"id": 7, "role": "member"}
    with psycopg.connect(ctx.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM audit.events WHERE action = 'snapshot'"
                            ).fetchone() == (3,)


def returned_records() -> dict[str, type]:
    """The classes of auditsql that Audit's public methods return, by name,
    with those their fields and properties hold in turn (a Report's results,
    a Plan's steps)."""
    found: dict[str, type] = {}

    def walk(hint: Any) -> None:
        for arg in typing.get_args(hint):
            walk(arg)
        if not (isinstance(hint, type) and hint.__module__.split(".")[0] == "auditsql"):
            return
        if getattr(hint, "_is_protocol", False) or issubclass(hint, enum.Enum):
            return  # an interface or a set of constants, not a record
        if found.get(hint.__name__) is hint:
            return
        assert hint.__name__ not in found, f"two classes named {hint.__name__}"
        found[hint.__name__] = hint
        if dataclasses.is_dataclass(hint):
            for field_hint in typing.get_type_hints(hint).values():
                walk(field_hint)
            for prop in vars(hint).values():
                if isinstance(prop, property) and prop.fget is not None:
                    walk(typing.get_type_hints(prop.fget).get("return"))

    for name, method in inspect.getmembers(Audit, inspect.isfunction):
        if not name.startswith("_"):
            walk(typing.get_type_hints(method)["return"])
    return found


def records_in_returns_column() -> list[str]:
    """The class names the method table's ``returns`` column gives in code:
    `Report`, `list[Moved]`, `(Uninstall, CronJob or None)`; errors
    (`NoPolicy`) and None left out."""
    names: list[str] = []
    for row in table_rows("method"):
        for code in re.findall(r"`([^`]+)`", row[1]):
            for name in re.findall(r"\b[A-Z]\w*", code):
                if not keyword.iskeyword(name) and not hasattr(errors, name) and name not in names:
                    names.append(name)
    return names


@pytest.mark.parametrize("name", records_in_returns_column())
def test_each_record_the_method_table_returns_is_a_frozen_dataclass(name: str) -> None:
    """docs/library.md: "Results that are records are frozen dataclasses".
    Each class the table names is one a method returns, and is frozen."""
    record = returned_records().get(name)
    assert record is not None, f"docs/library.md names `{name}`, which no method of Audit returns"
    assert dataclasses.is_dataclass(record), record
    assert record.__dataclass_params__.frozen, record


def test_every_record_a_method_returns_is_a_frozen_dataclass() -> None:
    """The same of every record a method returns, those the table names and
    those within them."""
    records = returned_records()
    assert set(records_in_returns_column()) <= set(records)
    loose = [f"{r.__module__}.{r.__qualname__}" for r in records.values()
             if not (dataclasses.is_dataclass(r) and r.__dataclass_params__.frozen)]
    assert loose == []


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
        # "(a subclass of `InvalidValue`)": an except clause for the base catches it.
        for base in re.findall(r"a subclass of `(\w+)`", row[2]):
            assert issubclass(error, getattr(errors, base)), f"{name} is no {base}"


def test_every_error_is_in_the_table() -> None:
    listed = {n for row in table_rows("error") for n in re.findall(r"`(\w+)`", row[0])}
    defined = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.AuditsqlError)
               and value is not errors.AuditsqlError}
    assert listed == defined


def test_audit_is_exported() -> None:
    assert auditsql.Audit is Audit and "Audit" in auditsql.__all__
