"""Reading the log (docs/reading.md): audit.changes, entity_history, row_at,
table_at, the grouping functions and the snapshot, checked against the
tables themselves: the state a table had after each write is what the log
must give back for that moment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.sql.sqltools import Conn, attach, column, expect_error, run, scalar

Rows = dict[str, dict[str, Any]]


def state(conn: Conn, table: str, keys: tuple[str, ...] = ("id",)) -> Rows:
    """The table as it is: entity id -> row as jsonb."""
    key = (f"t.{keys[0]}::text" if len(keys) == 1
           else "jsonb_build_array(" + ", ".join(f"t.{k}" for k in keys) + ")::text")
    return {r["k"]: r["row"] for r in conn.execute(
        f"SELECT {key} AS k, to_jsonb(t) AS row FROM {table} AS t").fetchall()}


def table_at(conn: Conn, table: str, at: Any) -> Rows:
    return {r["entity_id"]: r["row"] for r in conn.execute(
        "SELECT entity_id, row FROM audit.table_at(%s::regclass, %s)", (table, at)).fetchall()}


def last_time(conn: Conn) -> Any:
    return scalar(conn, "SELECT max(occurred_at) FROM audit.events")


class Recorder:
    """Runs writes one statement at a time and keeps the table's state after
    each, with the time of the statement's events."""

    def __init__(self, conn: Conn, table: str, keys: tuple[str, ...] = ("id",)) -> None:
        self.conn, self.table, self.keys = conn, table, keys
        self.states: list[tuple[Any, Rows]] = []

    def write(self, statement: str) -> None:
        before = scalar(self.conn, "SELECT coalesce(max(id), 0) FROM audit.events")
        self.conn.execute(statement)
        at = scalar(self.conn, "SELECT max(occurred_at) FROM audit.events WHERE id > %s",
                    (before,))
        if at is not None:
            self.states.append((at, state(self.conn, self.table, self.keys)))

    def check(self) -> None:
        for at, expected in self.states:
            assert table_at(self.conn, self.table, at) == expected, at
            for key, row in expected.items():
                got = scalar(self.conn, "SELECT audit.row_at(%s::regclass, %s, %s)",
                             (self.table, key, at))
                assert got == row, (at, key)
        first = self.states[0][0]
        assert table_at(self.conn, self.table, first - timedelta(microseconds=1)) == {}


@pytest.fixture
def users(su: Conn) -> Conn:
    run(su, "CREATE TABLE users (id int PRIMARY KEY, email text, role text)")
    attach(su, "users")
    return su


def test_row_at_and_table_at_follow_every_write(users: Conn) -> None:
    r = Recorder(users, "users")
    r.write("INSERT INTO users VALUES (1, 'a@x', 'member'), (2, 'b@x', 'member')")
    r.write("UPDATE users SET role = 'admin' WHERE id = 1")
    r.write("UPDATE users SET id = 3 WHERE id = 2")
    r.write("INSERT INTO users VALUES (2, 'c@x', 'member')")
    r.write("DELETE FROM users WHERE id = 1")
    r.write("TRUNCATE users")
    r.write("INSERT INTO users VALUES (1, 'd@x', 'owner')")
    r.check()
    assert scalar(users, "SELECT audit.row_at('users', '1', now() - interval '1 day')") is None


def test_a_key_shift_in_one_statement(su: Conn) -> None:
    run(su, "CREATE TABLE k (id int PRIMARY KEY DEFERRABLE INITIALLY IMMEDIATE, v text)")
    attach(su, "k")
    r = Recorder(su, "k")
    r.write("INSERT INTO k SELECT g, 'v' || g FROM generate_series(1, 5) AS g")
    r.write("UPDATE k SET id = id + 1")
    r.write("UPDATE k SET id = id - 1")
    r.write("UPDATE k SET id = 7 - id")
    r.check()


def test_entity_history_follows_key_changes_both_ways(users: Conn) -> None:
    run(users, "INSERT INTO users VALUES (7, 'e@x', 'member')",
        "UPDATE users SET id = 8 WHERE id = 7",
        "UPDATE users SET id = 9 WHERE id = 8",
        "INSERT INTO users VALUES (100, 'other', 'member')")
    for start in ("7", "8", "9"):
        rows = users.execute("SELECT action, entity_id, previous_entity_id FROM"
                             " audit.entity_history('users', %s)", (start,)).fetchall()
        assert [(r["action"], r["entity_id"], r["previous_entity_id"]) for r in rows] == [
            ("created", "7", None), ("updated", "8", "7"), ("updated", "9", "8")]


def test_changes_one_row_per_column(users: Conn) -> None:
    run(users, "INSERT INTO users VALUES (7, 'e@x', 'member')")
    with users.transaction():
        users.execute("SELECT audit.set_actor('u-1', 'root@x', 'admin')")
        users.execute("UPDATE users SET role = 'owner' WHERE id = 7")
    run(users, "UPDATE users SET email = 'f@x' WHERE id = 7", "DELETE FROM users")
    rows = users.execute("SELECT action, column_name, old_value, new_value, is_admin, actor_id"
                         " FROM audit.changes WHERE entity_id = '7'"
                         " ORDER BY event_id, column_name").fetchall()
    assert [tuple(r.values()) for r in rows] == [
        ("created", "email", None, "e@x", False, None),
        ("created", "id", None, 7, False, None),
        ("created", "role", None, "member", False, None),
        ("updated", "role", "member", "owner", True, "u-1"),
        ("updated", "email", "e@x", "f@x", False, None),
        ("deleted", "email", "f@x", None, False, None),
        ("deleted", "id", 7, None, False, None),
        ("deleted", "role", "owner", None, False, None),
    ]
    assert column(users, "SELECT actor_id FROM audit.changes WHERE entity_type = 'public.users'"
                  " AND entity_id = '7' AND column_name = 'role' AND is_admin") == ["u-1"]


def test_snapshot_records_rows_from_before_auditing(su: Conn) -> None:
    run(su, "CREATE TABLE t (a int, b text, c text, PRIMARY KEY (a, b))",
        "INSERT INTO t SELECT g, 'x', 'c' || g FROM generate_series(1, 25) AS g")
    attach(su, "t")
    assert scalar(su, "SELECT count(*) FROM audit.table_at('t', now())") == 0
    before = state(su, "t", ("a", "b"))
    su.execute("CALL audit.snapshot('t', 7)")
    assert table_at(su, "t", last_time(su)) == before
    assert scalar(su, "SELECT audit.row_at('t', '[3, \"x\"]', now())") == before['[3, "x"]']
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE action = 'snapshot'") == 25


def test_reading_errors(users: Conn, su: Conn) -> None:
    run(su, "CREATE TABLE plain (id int PRIMARY KEY)")
    expect_error(su, "SELECT audit.row_at('plain', '1', now())", sqlstate="55000",
                 contains="table public.plain is not audited")
    expect_error(su, "SELECT audit.row_at('nope', '1', now())", sqlstate="42P01")
    expect_error(su, "SELECT audit.row_at('users', 'abc', now())", sqlstate="22023",
                 contains="is not an id of public.users")
