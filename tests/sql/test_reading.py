"""Reading the log (docs/reading.md): audit.changes, entity_history, row_at,
table_at, the grouping functions and the snapshot, checked against the
tables themselves: the state a table had after each write is what the log
must give back for that moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.sql.sqltools import Conn, attach, column, expect_error, month_partition, run, scalar

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


# -- what a request, a transaction or an actor did ----------------------------------


def increasing(ids: list[int]) -> bool:
    return all(a < b for a, b in zip(ids, ids[1:]))


def test_request_transaction_and_actor_events_come_oldest_first(users: Conn) -> None:
    """Three transactions of one actor and one request. The partition is then
    clustered on the entity index, whose order is the reverse of theirs, so
    that only the functions' own order gives the events back oldest first."""
    txids = []
    for keys in ((6, 5), (4, 3), (2, 1)):
        with users.transaction():
            users.execute("SELECT audit.set_context('u-9', request_id => 'req-9')")
            for key in keys:
                users.execute("INSERT INTO users VALUES (%s, 'e@x', 'member')", (key,))
            users.execute("SELECT audit.log_event('viewed', 'user', %s)", (str(keys[-1]),))
            txids.append(scalar(users, "SELECT txid_current()"))
    partition = month_partition(users)
    index = scalar(users, "SELECT quote_ident(c.relname) FROM pg_index AS i"
                          " JOIN pg_class AS c ON c.oid = i.indexrelid"
                          " JOIN pg_inherits AS h ON h.inhrelid = i.indexrelid"
                          " WHERE h.inhparent = 'audit.events_entity_idx'::regclass"
                          " AND i.indrelid = %s::regclass", (partition,))
    users.execute(f"CLUSTER {partition} USING {index}")
    assert not increasing(column(users, "SELECT id FROM audit.events WHERE request_id = 'req-9'"))
    by_request = column(users, "SELECT id FROM audit.request_events('req-9')")
    assert len(by_request) == 9 and increasing(by_request)
    by_actor = column(users, "SELECT id FROM audit.actor_events('u-9', now() - interval '1 hour')")
    assert by_actor == by_request
    for txid in txids:
        by_transaction = column(users, "SELECT id FROM audit.transaction_events(%s)", (txid,))
        assert len(by_transaction) == 3 and increasing(by_transaction)


T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def events_at(su: Conn, actor: str, *times: datetime) -> list[int]:
    """Ids of events of *actor* written directly at *times*, in that order."""
    return column(su, "INSERT INTO audit.events (category, action, actor_id, occurred_at)"
                      " SELECT 'app', 'step', %s, t FROM unnest(%s::timestamptz[])"
                      " WITH ORDINALITY AS u(t, n) ORDER BY n RETURNING id",
                  (actor, list(times)))


def actor_events(conn: Conn, *args: Any) -> list[int]:
    placeholders = ", ".join(["%s"] * len(args))
    return column(conn, f"SELECT id FROM audit.actor_events({placeholders})", args)


def test_actor_events_returns_1000_events_unless_given_a_limit(su: Conn) -> None:
    ids = events_at(su, "u-busy", *[T0] * 1002)
    assert actor_events(su, "u-busy", T0) == ids[:1000]
    assert actor_events(su, "u-busy", T0, None, 1002) == ids
    assert actor_events(su, "u-busy", T0, None, 3) == ids[:3]


def test_actor_events_from_is_inclusive_and_to_exclusive(su: Conn) -> None:
    second = timedelta(seconds=1)
    early, on_from, inside, on_to = events_at(su, "u-1", T0 - second, T0, T0 + second,
                                              T0 + 2 * second)
    events_at(su, "u-2", T0)
    assert actor_events(su, "u-1", T0, T0 + 2 * second) == [on_from, inside]
    assert actor_events(su, "u-1", T0, None) == [on_from, inside, on_to]
    assert actor_events(su, "u-1", T0 - second, T0) == [early]


def test_reading_on_from_the_last_occurred_at_gives_that_moments_events_again(
        su: Conn) -> None:
    second = timedelta(seconds=1)
    first, *same_moment, last = events_at(su, "u-1", T0, T0 + second, T0 + second,
                                          T0 + second, T0 + 2 * second)
    page = actor_events(su, "u-1", T0, None, 3)
    assert page == [first, *same_moment[:2]]
    from_last = scalar(su, "SELECT occurred_at FROM audit.events WHERE id = %s", (page[-1],))
    assert actor_events(su, "u-1", from_last, None, 3) == same_moment
    assert actor_events(su, "u-1", from_last, None, 4) == [*same_moment, last]


@pytest.mark.parametrize("limit", [0, -1, None])
def test_actor_events_refuses_a_limit_that_is_not_positive(su: Conn, limit: int | None) -> None:
    expect_error(su, "SELECT * FROM audit.actor_events('u-1', now(), NULL, %s)", (limit,),
                 sqlstate="22023", contains="invalid limit")
