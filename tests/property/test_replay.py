"""The replay oracle: for random concurrent workloads, replaying the committed
audit events in id order rebuilds every audited table exactly.

Each example creates fresh tables (awkward names, varied column types, a
generated and a dropped column, a composite and deferrable key, a table
without a primary key, a two-level partitioned table with a partition created
after attach), attaches them, runs several sessions of transactions at once
under every isolation level (some rolled back, some with savepoints rolled
back), then checks every event's format and provenance and rebuilds each table
from its events. An error fails the example unless the workload provoked it
on its own tables (tests/property/provenance.py). Scripted cases cover what
random workloads reach rarely, and what the README says is not carried
exactly (values jsonb cannot hold, a TRUNCATE of a partition created after
attach) is checked to be logged exactly as it says.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from auditsql import installer
from tests.property.model import (
    AWKWARD,
    AWKWARD_TABLES,
    Column,
    Names,
    Table,
    build_tables,
    ident,
)
from tests.property.oracle import (
    AUDIT,
    DATA_ACTIONS,
    SEED_TAG,
    attach_table,
    check_events,
    check_oracle,
    create_tables,
    entity_type,
    event_coverage,
    insert_seed,
    last_event_id,
    replay,
    rows_text,
    shadow_table,
)
from tests.property.provenance import provenance
from tests.property.strategies import named_workloads, workloads
from tests.property.workload import Outcome, Workload, insert_key_sql, run_concurrently

SCRIPTED_TAG = "scripted"
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


def run_example(dsn: str, names: Names, workload: Workload) -> tuple[Outcome, Counter[str]]:
    """Fresh tables, the workload, then the oracle."""
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        since, tables = create_tables(conn, names, build_tables(names), workload.captures)
        insert_seed(conn, tables, workload.seed)
        prov = provenance(conn, [t.qualified for t in tables], AUDIT.schema)
        outcome = run_concurrently(dsn, tables, workload.sessions, prov)
        check_oracle(conn, tables, since, outcome.committed | {SEED_TAG})
        coverage = event_coverage(conn, tables, since)
    coverage.update(f"capture {mode}" for mode in workload.captures)
    return outcome, coverage


@pytest.mark.slow
def test_replay_reproduces_tables_under_concurrent_workloads(audited_db: str) -> None:
    """Three sessions at once; every isolation level; awkward names throughout."""
    seen: Counter[str] = Counter()

    @settings(max_examples=100, deadline=None, suppress_health_check=HEALTH)
    @given(workload=workloads(AWKWARD_TABLES, AWKWARD.labels, n_sessions=3, max_txns=4))
    def check(workload: Workload) -> None:
        outcome, coverage = run_example(audited_db, AWKWARD, workload)
        seen.update(outcome.counts)
        seen.update(coverage)

    check()
    for what in ("committed", "rolled back", "aborted", "created", "updated", "key changed",
                 "numeric scale change", "deleted", "truncated", "partitioned updated",
                 "capture row", "capture statement"):
        assert seen[what] > 0, f"the workloads never produced {what!r}: {dict(seen)}"


@pytest.mark.slow
def test_replay_with_drawn_identifiers(audited_db: str) -> None:
    """Schema, table, partition, column, type and enum label names drawn at random."""

    @settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)
    @given(case=named_workloads())
    def check(case: tuple[Names, Workload]) -> None:
        names, workload = case
        run_example(audited_db, names, workload)

    check()


# --------------------------------------------------------------------------
# Scripted cases the random workloads leave out
# --------------------------------------------------------------------------


def scripted(dsn: str,
             steps: Callable[[psycopg.Connection[Any], psycopg.Connection[Any]], None]) -> None:
    """Fresh tables, ``steps`` on two connections whose work counts as committed,
    then the oracle."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        since, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        with connections(dsn, 2) as (a, b):
            steps(a, b)
        check_oracle(conn, tables, since, {SCRIPTED_TAG})


@contextmanager
def connections(dsn: str, n: int) -> Iterator[list[psycopg.Connection[Any]]]:
    """``n`` autocommit connections whose transactions carry request id ``SCRIPTED_TAG``."""
    conns = [psycopg.connect(dsn, autocommit=True,
                             options=f"-c auditsql.request_id={SCRIPTED_TAG}")
             for _ in range(n)]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_truncate_in_read_committed_records_rows_committed_while_it_waited(
        audited_db: str) -> None:
    """TRUNCATE blocked behind an open insert records the row once it commits."""
    main = AWKWARD_TABLES[0]

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        b.execute("BEGIN")
        b.execute(insert_key_sql(main, (1,)))
        done = threading.Event()

        def truncate() -> None:
            a.execute(f"TRUNCATE {main.qualified}")
            done.set()

        worker = threading.Thread(target=truncate)
        worker.start()
        assert not done.wait(0.3), "TRUNCATE did not wait for the open insert"
        b.execute("COMMIT")
        worker.join()
        assert done.is_set()

    scripted(audited_db, steps)


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_truncate_after_a_concurrent_commit_outside_read_committed_is_refused(
        audited_db: str, isolation: str) -> None:
    """The snapshot cannot see the newly committed row, so TRUNCATE must not run."""
    main = AWKWARD_TABLES[0]

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        a.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        a.execute("SELECT 1")
        b.execute(insert_key_sql(main, (1,)))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            a.execute(f"TRUNCATE {main.qualified}")
        a.execute("ROLLBACK")

    scripted(audited_db, steps)


def test_partition_moves_and_writes_straight_into_partitions(audited_db: str) -> None:
    """Rows moved between partitions at both levels, and writes and TRUNCATE
    aimed at leaf and intermediate partitions, all replay."""
    part = AWKWARD_TABLES[3]
    north, south, south_lo, _, default = AWKWARD.partitions
    id_col, region = (ident(k) for k in part.key)
    payload = ident(part.value_columns[0].name)

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        a.execute(insert_key_sql(part, (1, "north"), (2, "south"), (8, "south"), (3, "east")))
        b.execute(f"INSERT INTO {ident(part.schema, south_lo)} ({id_col}, {region})"
                  " VALUES (4, 'south')")
        b.execute(f"UPDATE {ident(part.schema, north)} SET {region} = 'nörd' WHERE {id_col} = 1")
        a.execute(f"UPDATE {part.qualified} SET {region} = 'south' WHERE {id_col} = 1")
        a.execute(f"UPDATE {ident(part.schema, south)} SET {id_col} = {id_col} + 5"
                  f" WHERE {id_col} < 5")
        a.execute(f"UPDATE {part.qualified} SET {payload} = 'x', {region} = 'we''st'"
                  f" WHERE {id_col} = 7")
        b.execute(f"DELETE FROM {ident(part.schema, default)} WHERE {id_col} = 3")
        b.execute(f"TRUNCATE {ident(part.schema, south)}")

    with psycopg.connect(audited_db, autocommit=True) as conn:
        scripted(audited_db, steps)
        deleted = conn.execute(
            "SELECT count(*) FROM audit.events WHERE entity_type = %s AND action = 'deleted'",
            (entity_type(conn, part),)).fetchone()
    assert deleted == (6,), "four moves between partitions, one move back, one delete"


def truncate_late_partition(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
    """Steps: rows in the partition created after attach (and in another),
    then TRUNCATE of that partition alone, after attaching again."""
    part = AWKWARD_TABLES[3]
    a.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east")))
    installer.attach(a, [part.qualified], AUDIT)
    b.execute(f"TRUNCATE {ident(part.schema, AWKWARD.partitions[0])}")


def test_truncate_of_a_partitioned_table_records_partitions_created_after_attach(
        audited_db: str) -> None:
    part = AWKWARD_TABLES[3]

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        a.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east"), (1, "south")))
        b.execute(f"TRUNCATE {part.qualified}")

    scripted(audited_db, steps)


def test_truncate_of_a_late_partition_alone_after_attaching_again(audited_db: str) -> None:
    scripted(audited_db, truncate_late_partition)


def table_events(conn: psycopg.Connection[Any], table: Table,
                 since: int) -> list[tuple[str, str | None]]:
    """(action, entity_id) of ``table``'s events after ``since``."""
    return [(str(action), entity) for action, entity in conn.execute(
        "SELECT action, entity_id FROM audit.events WHERE entity_type = %s AND id > %s"
        " AND category = 'data' ORDER BY id", (table.entity_type, since))]


def test_truncate_of_a_late_partition_alone_is_recorded(audited_db: str) -> None:
    """README, "Partitioned tables": installed by a superuser, the event
    triggers give a partition created after attach its TRUNCATE trigger
    when it is created, so a TRUNCATE of it alone is recorded."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        part, north = tables[3], ident(AWKWARD.schema, AWKWARD.partitions[0])
        conn.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east")))
        conn.execute(f"TRUNCATE {north}")
        assert table_events(conn, part, since) == [
            ("created", '[1, "north"]'), ("created", '[2, "nörd"]'), ("created", '[1, "east"]'),
            ("truncated", '[1, "north"]'), ("truncated", '[2, "nörd"]')]
        with conn.transaction(force_rollback=True):
            real, replayed = replay(conn, part, since)
        assert real == replayed


def test_truncate_of_a_late_partition_alone_is_recorded_once_attach_runs_again(
        audited_db: str) -> None:
    """README, "Partitioned tables": where no event trigger gives a partition
    created after attach its own TRUNCATE capture (here: its trigger dropped
    quietly, as if installed without a superuser), a TRUNCATE of it alone
    leaves no events and its rows leave no trace; once attach runs again, it
    is recorded."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        part, north = tables[3], ident(AWKWARD.schema, AWKWARD.partitions[0])
        with conn.transaction():
            conn.execute("SET LOCAL auditsql.permit_ddl = on")
            conn.execute(f"DROP TRIGGER auditsql_capture_truncate ON {north}")
        conn.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east")))
        lost = rows_text(conn, north)
        assert sum(lost.values()) == 2
        conn.execute(f"TRUNCATE {north}")
        assert table_events(conn, part, since) == [
            ("created", '[1, "north"]'), ("created", '[2, "nörd"]'), ("created", '[1, "east"]')]
        with conn.transaction(force_rollback=True):
            real, replayed = replay(conn, part, since)
        assert (real - replayed, replayed - real) == (Counter(), lost), (
            "the replay differs from the table by the truncated rows, and only by them")

        again = last_event_id(conn)
        installer.attach(conn, [part.qualified], AUDIT)
        conn.execute(insert_key_sql(part, (3, "north")))
        conn.execute(f"TRUNCATE {north}")
        assert table_events(conn, part, again) == [
            ("created", '[3, "north"]'), ("truncated", '[3, "north"]')]


@dataclass(frozen=True)
class ValueCase:
    """A value written by a session with ``setting`` applied."""

    type: str
    value: str
    setting: str = ""


VALUE_CASES = [
    pytest.param(ValueCase("jsonb", """'{"a": [1.10, null, "\\u00e9"]}'"""), id="jsonb"),
    pytest.param(ValueCase("double precision", "0.1::float8 + 0.2::float8"), id="float8"),
    pytest.param(ValueCase("interval", "'-1 days -02:03:04'"), id="interval"),
    pytest.param(ValueCase("integer[]", "'{{1,2},{3,NULL}}'"), id="int[][]"),
    pytest.param(ValueCase("double precision", "0.1::float8 + 0.2::float8",
                           "SET extra_float_digits = 0"),
                 id="float8 exact under extra_float_digits 0"),
    pytest.param(ValueCase("interval", "'-1 days -02:03:04'", "SET IntervalStyle = sql_standard"),
                 id="interval exact under sql_standard IntervalStyle"),
    pytest.param(ValueCase("bytea", "'\\x00ff'::bytea", "SET bytea_output = escape"),
                 id="bytea as hex under escape bytea_output"),
]


def value_table(conn: psycopg.Connection[Any], type_: str) -> Table:
    """values.t (id, rid, v of ``type_``), created and attached."""
    table = Table("value", "values", "t", (Column("id", "integer", "kint"),
                                           Column("rid", "bigint", "rid"),
                                           Column("v", type_, "value")),
                  ("id",), 'PRIMARY KEY ("id")')
    conn.execute(f"CREATE SCHEMA {ident(table.schema)}")
    conn.execute(table.create_sql()[0])
    return attach_table(conn, table)


@pytest.mark.parametrize("case", VALUE_CASES)
def test_row_images_carry_values_exactly(audited_db: str, case: ValueCase) -> None:
    """A row written (and then re-keyed) by a session replays to the same row."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since = last_event_id(conn)
        table = value_table(conn, case.type)
        with connections(audited_db, 1) as (writer,):
            if case.setting:
                writer.execute(case.setting)
            writer.execute(f"INSERT INTO {table.qualified} VALUES (1, 1, {case.value})")
            writer.execute(f"UPDATE {table.qualified} SET id = 2")
        check_oracle(conn, (table,), since, {SCRIPTED_TAG})


@dataclass(frozen=True)
class LossyCase:
    """A value jsonb cannot carry: ``stored`` is its text in the table,
    ``logged`` its JSON in the row images, and ``alike`` another value,
    logged the same, which is what a replay writes back."""

    type: str
    value: str
    stored: str
    logged: str
    alike: str
    replayed: str | None


LOSSY_CASES = [
    pytest.param(LossyCase("jsonb", "'null'", "null", "null", "NULL", None),
                 id="jsonb null logs as SQL NULL does"),
    pytest.param(LossyCase("json", """'{"b": 1,  "a": 2, "a": 3}'""", '{"b": 1,  "a": 2, "a": 3}',
                           '{"a": 3, "b": 1}', """'{"a": 3, "b": 1}'""", '{"a": 3, "b": 1}'),
                 id="json loses spacing, key order and duplicate keys"),
    pytest.param(LossyCase("double precision", "'-0'", "-0", "0", "0", "0"),
                 id="float8 -0 reads 0"),
    pytest.param(LossyCase("integer[]", "'[0:1]={1,2}'", "[0:1]={1,2}", "[1, 2]", "'{1,2}'",
                           "{1,2}"),
                 id="arrays lose non-default lower bounds"),
]


@pytest.mark.parametrize("case", LOSSY_CASES)
def test_row_images_carry_what_jsonb_can(audited_db: str, case: LossyCase) -> None:
    """README, "Row images are jsonb": what jsonb cannot carry is not
    carried. The value is logged exactly as ``logged``, as ``alike`` is,
    and a replay brings back ``alike``: it differs from the table in that
    row only."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since = last_event_id(conn)
        table = value_table(conn, case.type)
        with connections(audited_db, 1) as (writer,):
            writer.execute(f"INSERT INTO {table.qualified} VALUES"
                           f" (1, 1, {case.value}), (3, 3, {case.alike})")
            writer.execute(f"UPDATE {table.qualified} SET id = id + 1")
        logged = conn.execute(
            "SELECT action, entity_id, (before -> 'v')::text, (after -> 'v')::text"
            " FROM audit.history WHERE entity_type = %s AND id > %s AND action = ANY (%s)"
            " ORDER BY entity_id::int, id",
            (table.entity_type, since, list(DATA_ACTIONS))).fetchall()
        assert logged == [
            ("created", "1", None, case.logged), ("updated", "2", case.logged, case.logged),
            ("created", "3", None, case.logged), ("updated", "4", case.logged, case.logged)]
        assert conn.execute(f"SELECT v::text FROM {table.qualified} ORDER BY id").fetchall() == [
            (case.stored,), (case.replayed,)]
        with conn.transaction(force_rollback=True):
            check_events(conn, table, since, {SCRIPTED_TAG})
            real, replayed = replay(conn, table, since)
            shadow = conn.execute(f"SELECT v::text FROM {shadow_table(table)}"
                                  " ORDER BY id").fetchall()
        assert shadow == [(case.replayed,), (case.replayed,)]
        row_2 = f"SELECT ROW(2, 1::bigint, {{}}::{case.type})::text"
        assert (real - replayed, replayed - real) == (
            Counter(r for (r,) in conn.execute(row_2.format(case.value))),
            Counter(r for (r,) in conn.execute(row_2.format(case.alike))))
