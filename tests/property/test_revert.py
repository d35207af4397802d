"""Revert, for any sequence of changes: undoing a request brings its tables
back exactly as they were before it, whatever came before, and replaying the
whole log, the revert included, rebuilds them as they are."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditsql import Audit
from auditsql.revert import Actor

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

# Two keys columns (a composite key) and values of awkward types; "x y" and
# "Qu'o""te" test quoting.
TABLE = '"Qu\'o""te"'
CREATE = f"""
CREATE TABLE {TABLE} (a int, "x y" text, n numeric, arr int[], doc jsonb,
                      PRIMARY KEY (a, "x y"))
"""
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=3)
KEYS = st.tuples(st.integers(0, 3), st.sampled_from(["k", "K'", "\\", "é"]))
VALUES = st.fixed_dictionaries({
    "n": st.one_of(st.none(), st.decimals(-1000, 1000, places=2, allow_nan=False)),
    "arr": st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=3)),
    "doc": st.one_of(st.none(), st.dictionaries(TEXT, TEXT,
                                                max_size=2)),
})
OPS = st.lists(st.one_of(
    st.tuples(st.just("insert"), KEYS, VALUES),
    st.tuples(st.just("update"), KEYS, VALUES),
    st.tuples(st.just("rekey"), KEYS, KEYS),
    st.tuples(st.just("delete"), KEYS, st.none()),
), max_size=8)


def apply_ops(conn: psycopg.Connection[Any], ops: list[tuple[Any, ...]]) -> None:
    """Run each change in a savepoint: one refused (a key taken) is skipped."""
    for op, key, arg in ops:
        try:
            with conn.transaction():
                if op == "insert":
                    conn.execute(f'INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, %s)',
                                 (*key, arg["n"], arg["arr"],
                                  None if arg["doc"] is None else psycopg.types.json.Jsonb(
                                      arg["doc"])))
                elif op == "update":
                    conn.execute(f'UPDATE {TABLE} SET n = %s, arr = %s, doc = %s '
                                 'WHERE a = %s AND "x y" = %s',
                                 (arg["n"], arg["arr"], None if arg["doc"] is None else
                                  psycopg.types.json.Jsonb(arg["doc"]), *key))
                elif op == "rekey":
                    conn.execute(f'UPDATE {TABLE} SET a = %s, "x y" = %s '
                                 'WHERE a = %s AND "x y" = %s', (*arg, *key))
                else:
                    conn.execute(f'DELETE FROM {TABLE} WHERE a = %s AND "x y" = %s', key)
        except psycopg.errors.UniqueViolation:
            pass


def rows(conn: psycopg.Connection[Any], relation: str = TABLE) -> Counter[str]:
    return Counter(r[0] for r in conn.execute(f"SELECT ROW(t.*)::text FROM {relation} AS t"))


@pytest.mark.parametrize("by", ["request", "txid"])
def test_undoing_a_request_restores_the_tables(audited_db: str, by: str) -> None:
    with psycopg.connect(audited_db, autocommit=True) as conn:
        conn.execute(CREATE)
        conn.execute("SELECT audit.attach(%s)", (TABLE,))

    runs = itertools.count()

    @settings(max_examples=25, deadline=None, suppress_health_check=HEALTH)
    @given(before=OPS, during=OPS)
    def check(before: list[tuple[Any, ...]], during: list[tuple[Any, ...]]) -> None:
        request = f"req-{next(runs)}"
        with psycopg.connect(audited_db, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {TABLE}")
            with conn.transaction():
                apply_ops(conn, before)
            start = rows(conn)
            with conn.transaction():
                conn.execute("SELECT audit.set_context(actor_id => 'app', request_id => %s)",
                             (request,))
                apply_ops(conn, during)
                txid = conn.execute("SELECT txid_current()").fetchone()[0]  # type: ignore[index]
            with psycopg.connect(audited_db) as own, Audit(own) as audit:
                if by == "request":
                    audit.revert(request_id=request, actor=Actor("ops"))
                else:
                    audit.revert(txid=int(txid), actor=Actor("ops"))
            assert rows(conn) == start
            # The log, revert included, replays into what the table holds.
            conn.execute("DROP TABLE IF EXISTS replay.shadow")
            conn.execute(f"CREATE TABLE replay.shadow (LIKE {TABLE})")
            conn.execute("SELECT replay.apply(%s, 'replay.shadow', 0)", (f"public.{TABLE}",))
            assert rows(conn, "replay.shadow") == rows(conn)

    check()
