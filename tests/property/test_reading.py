"""row_at and table_at against two oracles, over random workloads: the
table as it was after each committed transaction (read from the table
itself, at the time of that transaction's last events), and the replay
oracle's shadow table (oracle.REPLAY_SQL), rebuilt from the events.
Workloads mix inserts, updates, key shifts within one statement, deletes,
TRUNCATE and two-statement transactions, on a composite deferrable key,
in a plain and a partitioned table."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
KEYS = st.integers(min_value=0, max_value=12)

insert = st.builds(lambda a, b, v: f"INSERT INTO {{t}} VALUES ({a}, '{b}', {v})",
                   KEYS, st.sampled_from("xy"), st.integers(0, 99))
fill = st.builds(lambda lo, b: f"INSERT INTO {{t}} SELECT g, '{b}', g FROM generate_series({lo}, {lo + 4}) AS g"
                 f" WHERE NOT EXISTS (SELECT FROM {{t}} AS o WHERE o.a = g AND o.b = '{b}')",
                 KEYS, st.sampled_from("xy"))
update = st.builds(lambda lo, v: f"UPDATE {{t}} SET v = {v} WHERE a >= {lo} AND a < {lo + 4}",
                   KEYS, st.integers(0, 99))
shift = st.builds(lambda d, lo: f"UPDATE {{t}} SET a = a + {d} WHERE a >= {lo}",
                  st.sampled_from([-2, -1, 1, 3]), KEYS)
rename = st.builds(lambda: "UPDATE {t} SET b = CASE b WHEN 'x' THEN 'y' ELSE 'x' END WHERE a % 3 = 0")
delete = st.builds(lambda lo: f"DELETE FROM {{t}} WHERE a >= {lo} AND a < {lo + 3}", KEYS)
truncate = st.just("TRUNCATE {t}")
statement = st.one_of(insert, fill, update, shift, shift, rename, delete, truncate)
transaction = st.lists(statement, min_size=1, max_size=2)
workload = st.lists(transaction, min_size=1, max_size=12)

names = count()


@pytest.fixture
def conn(audited_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(audited_db, autocommit=True, row_factory=dict_row) as c:
        yield c


def state(conn: psycopg.Connection[Any], table: str) -> dict[str, Any]:
    return {r["k"]: r["row"] for r in conn.execute(
        f"SELECT jsonb_build_array(t.a, t.b)::text AS k, to_jsonb(t) AS row FROM {table} AS t")}


def table_at(conn: psycopg.Connection[Any], table: str, at: Any) -> dict[str, Any]:
    return {r["entity_id"]: r["row"] for r in conn.execute(
        "SELECT entity_id, row FROM audit.table_at(%s::regclass, %s)", (table, at))}


def run_workload(conn: psycopg.Connection[Any], table: str,
                 txns: list[list[str]]) -> list[tuple[Any, dict[str, Any]]]:
    """Run each transaction; the state after each one that wrote, with the
    time of its last events."""
    seen = []
    for txn in txns:
        mark = conn.execute("SELECT coalesce(max(id), 0) AS m FROM audit.events").fetchone()["m"]
        try:
            with conn.transaction():
                for text in txn:
                    conn.execute(text.format(t=table))
        except psycopg.errors.UniqueViolation:
            continue
        at = conn.execute("SELECT max(occurred_at) AS at FROM audit.events WHERE id > %s",
                          (mark,)).fetchone()["at"]
        if at is not None:
            seen.append((at, state(conn, table)))
    return seen


def check(conn: psycopg.Connection[Any], table: str, seen: list[tuple[Any, dict[str, Any]]]) -> None:
    keys = {k for _, rows in seen for k in rows}
    for at, expected in seen:
        assert table_at(conn, table, at) == expected, at
        for key in keys:
            got = conn.execute("SELECT audit.row_at(%s::regclass, %s, %s) AS r",
                               (table, key, at)).fetchone()["r"]
            assert got == expected.get(key), (at, key)
    # The replay oracle rebuilds the same table from the same events.
    if seen:
        conn.execute(f"CREATE TABLE {table}_shadow (LIKE {table})")
        conn.execute("SELECT replay.apply(%s, %s::regclass, 0)", (f"public.{table}", f"{table}_shadow"))
        assert state(conn, f"{table}_shadow") == table_at(conn, table, seen[-1][0])


@settings(max_examples=25, deadline=None, suppress_health_check=HEALTH)
@given(txns=workload)
def test_plain_table(conn: psycopg.Connection[Any], txns: list[list[str]]) -> None:
    table = f"r{next(names)}"
    conn.execute(f"CREATE TABLE {table} (a int, b text, v int,"
                 " PRIMARY KEY (a, b) DEFERRABLE INITIALLY IMMEDIATE)")
    conn.execute("SELECT audit.attach(%s::regclass)", (table,))
    check(conn, table, run_workload(conn, table, txns))


@settings(max_examples=15, deadline=None, suppress_health_check=HEALTH)
@given(txns=workload)
def test_partitioned_table(conn: psycopg.Connection[Any], txns: list[list[str]]) -> None:
    table = f"p{next(names)}"
    conn.execute(f"CREATE TABLE {table} (a int, b text, v int, PRIMARY KEY (a, b))"
                 " PARTITION BY RANGE (a)")
    conn.execute(f"CREATE TABLE {table}_low PARTITION OF {table} FOR VALUES FROM (MINVALUE) TO (6)")
    conn.execute(f"CREATE TABLE {table}_high PARTITION OF {table} FOR VALUES FROM (6) TO (MAXVALUE)")
    conn.execute("SELECT audit.attach(%s::regclass)", (table,))
    check(conn, table, run_workload(conn, table, txns))
