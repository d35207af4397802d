"""Helpers for the SQL tests: connections, queries, reading the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.abc import QueryNoTemplate as Query
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

Conn = psycopg.Connection[DictRow]
Event = dict[str, Any]

OWNER = "auditsql_owner"
READER = "auditsql_reader"
OPERATOR = "auditsql_operator"
ADMIN = "auditsql_admin"
ROW_ACTIONS = ("created", "updated", "deleted", "truncated")
APPLICATION_NAME = "auditsql-sql-tests"


@dataclass(frozen=True)
class AppRole:
    """A non-superuser login role and its DSN for the test database."""

    name: str
    dsn: str


def connect(dsn: str, *, autocommit: bool = True, **kw: Any) -> Conn:
    """A connection returning rows as dicts."""
    kw.setdefault("application_name", APPLICATION_NAME)
    return psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row, **kw)


def dbname(dsn: str) -> str:
    """The database name of *dsn*."""
    return str(conninfo_to_dict(dsn)["dbname"])


def ident(name: str) -> sql.Identifier:
    """A quoted identifier."""
    return sql.Identifier(name)


def scalar(conn: Conn, query: Query, params: Sequence[Any] | None = None) -> Any:
    """First column of the first row of *query*."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"no row from {query!r}"
    return next(iter(row.values()))


def column(conn: Conn, query: Query,
           params: Sequence[Any] | None = None) -> list[Any]:
    """First column of every row of *query*."""
    return [next(iter(r.values())) for r in conn.execute(query, params).fetchall()]


def run(conn: Conn, *statements: Query) -> None:
    """Execute statements one by one."""
    for statement in statements:
        conn.execute(statement)


def events(conn: Conn, entity_type: str | None = None,
           actions: Iterable[str] = ROW_ACTIONS, *, source: str = "audit.history") -> list[Event]:
    """Events of *entity_type* (any if None) with one of *actions*, oldest first.

    Read from the history view (whole before rows and changed_columns), or
    with ``source="audit.events"`` as stored."""
    return conn.execute(
        f"SELECT * FROM {source} WHERE (%(t)s::text IS NULL OR entity_type = %(t)s)"
        " AND action = ANY(%(a)s) ORDER BY id",
        {"t": entity_type, "a": list(actions)},
    ).fetchall()


def brief(evts: Iterable[Event]) -> list[tuple[str, str | None]]:
    """(action, entity_id) of each event."""
    return [(e["action"], e["entity_id"]) for e in evts]


def count_events(conn: Conn) -> int:
    """Number of rows in the whole log."""
    return int(scalar(conn, "SELECT count(*) FROM audit.events"))


# The capture mode attach() asks for when a test names none; a test module
# may set it (see test_capture.py) to run every test in both modes.
DEFAULT_CAPTURE: str | None = None


def attach(conn: Conn, table: str, id_columns: list[str] | None = None,
           capture: str | None = None) -> None:
    """audit.attach(table, id_columns, capture)."""
    conn.execute("SELECT audit.attach(%s::regclass, %s, %s)",
                 (table, id_columns, capture or DEFAULT_CAPTURE))


def detach(conn: Conn, table: str) -> None:
    """audit.detach(table)."""
    conn.execute("SELECT audit.detach(%s::regclass)", (table,))


def triggers(conn: Conn, table: str) -> list[tuple[str, str]]:
    """(name, tgenabled) of the user-level triggers on *table* (clones included), sorted."""
    rows = conn.execute(
        "SELECT tgname::text AS name, tgenabled::text AS enabled FROM pg_trigger"
        " WHERE tgrelid = %s::regclass AND (NOT tgisinternal OR tgparentid <> 0) ORDER BY 1",
        (table,),
    ).fetchall()
    return [(r["name"], r["enabled"]) for r in rows]


def expect_error(conn: Conn, statement: Query,
                 params: Sequence[Any] | None = None, *,
                 sqlstate: str | None = None, contains: str | None = None) -> psycopg.Error:
    """Run *statement*, which must fail; check its SQLSTATE and message."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement, params)
    if not conn.autocommit:
        conn.rollback()
    error = info.value
    if sqlstate is not None:
        assert error.sqlstate == sqlstate, f"{error.sqlstate}: {error}"
    if contains is not None:
        assert contains in str(error), str(error)
    return error


def month_partition(conn: Conn) -> str:
    """Name of the events partition for the current (UTC) month."""
    return str(scalar(
        conn, "SELECT 'audit.events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')"))


def quiet_ddl(conn: Conn, *statements: Query) -> None:
    """Run DDL as a superuser with auditsql.permit_ddl set, in one
    transaction: the event triggers let it pass as install's own, neither
    recording it nor refreshing capture after it, as if they were absent."""
    with conn.transaction():
        conn.execute("SET LOCAL auditsql.permit_ddl = on")
        run(conn, *statements)


def churn_accounts(conn: psycopg.Connection[Any], rng: Any, new_row: str) -> None:
    """One random write to the test table `accounts (id int PRIMARY KEY,
    ...)` of 3,200 ids: half updates, then deletes, inserts (`new_row` the
    columns after id) and key changes to ids beyond them. A key taken by
    another writer meanwhile is no failure."""
    i, kind = rng.randint(1, 3200), rng.random()
    try:
        if kind < 0.5:
            conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (i,))
        elif kind < 0.65:
            conn.execute("DELETE FROM accounts WHERE id = %s", (i,))
        elif kind < 0.8:
            conn.execute(f"INSERT INTO accounts VALUES (%s, {new_row}) ON CONFLICT (id) DO NOTHING",
                         (i,))
        else:
            conn.execute("UPDATE accounts SET id = %s WHERE id = %s", (rng.randint(3200, 9000), i))
    except psycopg.errors.UniqueViolation:
        pass


# The last event id drawn from the log's sequence, committed or not.
LAST_DRAWN_ID = ("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
                 " FROM audit.events_id_seq")


def until_sealed(drawn: int, once: Callable[[], tuple[int, int, int]],
                 retry: bool = True) -> tuple[int, int, int]:
    """Seal with ``once`` (a run of audit.seal() by any path, giving blocks,
    events and sealed_to) until the bound reaches ``drawn``; the runs add
    up. A transaction of another database of the cluster (an autovacuum's
    ANALYZE) can hold one run's bound back, as it must
    (test_seal_concurrency.py). ``retry`` false: one run."""
    blocks = events = 0
    for _ in range(100):
        more, sealed, sealed_to = once()
        blocks, events = blocks + more, events + sealed
        if sealed_to >= drawn or not retry:
            break
        time.sleep(0.05)
    return blocks, events, sealed_to


def seal(conn: Conn, block_size: int = 10000) -> tuple[int, int, int]:
    """Seal what is committed: (blocks, events, sealed_to); outside a
    transaction of its own, until everything drawn before is sealed."""
    def once() -> tuple[int, int, int]:
        row = conn.execute("SELECT blocks, events, sealed_to FROM audit.seal(%s)",
                           (block_size,)).fetchone()
        assert row is not None
        return row["blocks"], row["events"], row["sealed_to"]

    return until_sealed(scalar(conn, LAST_DRAWN_ID), once, retry=conn.autocommit)
