"""The replay test accepts an error only when the workload provoked it on
its own tables: the same SQLSTATEs raised inside capture, while it writes
the log, fail the test.

Capture is made to fail on purpose for one row (entity id 5) by what a
superuser adds to the log partition in the throwaway database: a CHECK
constraint, or a trigger raising an error of a chosen SQLSTATE (which may
even claim, in its diagnostics, to concern a workload table). The same
SQLSTATEs raised by the workload's own tables are accepted, and so is the
one failure capture can meet through no doing of its own: a serializable
transaction that concurrent transactions have already doomed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from auditsql import installer
from tests.property.model import AWKWARD, AWKWARD_TABLES, Table, ident
from tests.property.oracle import AUDIT, create_tables, last_event_id
from tests.property.provenance import (
    ALREADY_DOOMED,
    Frame,
    Provenance,
    frames,
    provenance,
    why_not_the_workloads,
)
from tests.property.workload import (
    Insert,
    NotTheWorkloads,
    Op,
    Outcome,
    Session,
    Step,
    Truncate,
    Txn,
    TxnAborted,
    Update,
    Where,
    insert_key_sql,
    render,
    run_session,
    run_step,
)

FAILING_KEY = 5  # the key whose capture fails
FAILING_CHECK = "capture_fails_on_purpose"


@dataclass(frozen=True)
class Failure:
    """How capture is made to fail: a CHECK constraint on the log partition,
    or a trigger there raising ``sqlstate``, whose diagnostics may claim
    that the error concerns the workload's ``main`` table, or carry
    ``detail``."""

    sqlstate: str
    check: bool = False
    claims_a_workload_table: bool = False
    detail: str = ""


FAILURES = [
    pytest.param(Failure("23514", check=True), id="check constraint on the log partition"),
    pytest.param(Failure("23505", claims_a_workload_table=True),
                 id="unique violation claiming a workload table"),
    pytest.param(Failure("23514", claims_a_workload_table=True),
                 id="check violation claiming a workload table"),
    pytest.param(Failure("21000"), id="cardinality violation"),
    pytest.param(Failure("40001"), id="serialization failure"),
    pytest.param(Failure("40001", detail=ALREADY_DOOMED[0]),
                 id="serialization failure claiming a doomed transaction"),
    pytest.param(Failure("40P01"), id="deadlock"),
]


def log_partition(conn: psycopg.Connection[Any]) -> sql.Composable:
    """The log partition the next event goes to (the latest event's)."""
    row = conn.execute("SELECT tableoid::regclass::text FROM audit.events"
                       " ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    return sql.SQL(row[0])


def make_capture_fail(conn: psycopg.Connection[Any], failure: Failure, main: Table) -> None:
    """As a superuser: capture of the row of ``main`` with key FAILING_KEY
    fails with ``failure``."""
    partition = log_partition(conn)
    name = sql.Identifier(FAILING_CHECK)
    if failure.check:
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (entity_id <> {})"
                             " NOT VALID").format(
            partition, name, sql.Literal(str(FAILING_KEY))))
        return
    claims = sql.SQL("")
    if failure.claims_a_workload_table:
        claims = sql.SQL(", SCHEMA = {}, TABLE = {}, CONSTRAINT = 'spoofed'").format(
            sql.Literal(main.schema), sql.Literal(main.name))
    if failure.detail:
        claims = sql.SQL(", DETAIL = {}").format(sql.Literal(failure.detail))
    conn.execute(sql.SQL("""
        CREATE FUNCTION public.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.entity_id = {key} THEN
                RAISE EXCEPTION 'capture fails on purpose' USING ERRCODE = {sqlstate}{claims};
            END IF;
            RETURN NEW;
        END $$""").format(name=name, key=sql.Literal(str(FAILING_KEY)),
                          sqlstate=sql.Literal(failure.sqlstate), claims=claims))
    conn.execute(sql.SQL("CREATE TRIGGER {name} BEFORE INSERT ON {partition} FOR EACH ROW"
                         " EXECUTE FUNCTION public.{name}()").format(name=name,
                                                                     partition=partition))


def upsert(main: Table, key: int) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE of one row with key ``key``."""
    row = tuple(key if c.name in main.key else None for c in main.insert_columns)
    return Insert(main.label, None, (row,), "update")


def one_session(op: Op) -> Session:
    """A session of one transaction of one statement, as the workload runs them."""
    return Session("UTC", "hex", (Txn((Step(op),)),))


@pytest.mark.parametrize("capture", ["row", "statement"])
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("statement", ["upsert", "truncate"])
def test_an_error_raised_inside_capture_fails_the_test(
        audited_db: str, failure: Failure, capture: str, statement: str) -> None:
    with psycopg.connect(audited_db, autocommit=True) as conn:
        modes = (capture, "row", "row", "row")
        _, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES, modes)
        main = tables[0]
        op: Op = upsert(main, FAILING_KEY)
        if statement == "truncate":
            conn.execute(insert_key_sql(main, (FAILING_KEY,)))
            op = Truncate(main.label, None)
        prov = provenance(conn, [t.qualified for t in tables], AUDIT.schema)
        make_capture_fail(conn, failure, main)
        with pytest.raises(NotTheWorkloads) as info:
            run_session(audited_db, {t.label: t for t in tables}, one_session(op), "s0",
                        Outcome(), threading.Barrier(1), prov)
        error = info.value.__cause__
        assert isinstance(error, psycopg.Error)
        assert error.sqlstate == failure.sqlstate
        context = error.diag.context or ""
        capture_function = "capture_truncate" if statement == "truncate" else "capture_"
        assert f"PL/pgSQL function audit.{capture_function}" in context, context
        if failure.claims_a_workload_table:
            assert (error.diag.schema_name, error.diag.table_name) == (main.schema, main.name)
        assert str(info.value).startswith(
            "raised on audit." if failure.check else "raised inside audit.capture"), info.value
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.SQL(main.qualified))).fetchone()
        assert rows == ((1,) if statement == "truncate" else (0,)), "the write was rolled back"


# --------------------------------------------------------------------------
# The same SQLSTATEs from the workload's own tables are accepted
# --------------------------------------------------------------------------


@pytest.fixture
def workload(audited_db: str) -> tuple[str, tuple[Table, ...], Provenance]:
    """The awkward tables, attached, with a row of key 1 in ``main``."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        _, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        conn.execute(insert_key_sql(tables[0], (1,)))
        return audited_db, tables, provenance(conn, [t.qualified for t in tables], AUDIT.schema)


def attempt(dsn: str, tables: tuple[Table, ...], prov: Provenance, op: Op,
            isolation: str = "READ COMMITTED") -> str:
    """Run ``op`` as the workload does, in its own transaction."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        try:
            return run_step(conn, render({t.label: t for t in tables}, op), Step(op),
                            isolation, prov)
        finally:
            conn.execute("ROLLBACK")


def test_a_duplicate_key_in_a_workload_table_is_accepted(workload: Any) -> None:
    dsn, tables, prov = workload
    main = tables[0]
    row = tuple(1 if c.name in main.key else None for c in main.insert_columns)
    assert attempt(dsn, tables, prov, Insert(main.label, None, (row,))) == "failed 23505"


def test_a_row_outside_its_partition_is_accepted(workload: Any) -> None:
    dsn, tables, prov = workload
    part = tables[3]
    south_lo = AWKWARD.partitions[2]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(insert_key_sql(part, (1, "south")))
    move = Update(part.label, south_lo, Where(), ((part.key[0], 9),))
    assert attempt(dsn, tables, prov, move) == "failed 23514"


def test_an_upsert_meeting_a_row_twice_is_accepted(workload: Any) -> None:
    dsn, tables, prov = workload
    main = tables[0]
    twice = upsert(main, 2)
    assert attempt(dsn, tables, prov, Insert(main.label, None, twice.rows * 2, "update")) == (
        "failed 21000")


def test_a_serialization_failure_on_a_workload_table_is_accepted(workload: Any) -> None:
    dsn, tables, prov = workload
    main = tables[0]
    value = next(c.name for c in main.value_columns if c.kind == "text")
    where = Where(((main.key[0], 1, 1),))
    with psycopg.connect(dsn, autocommit=True) as first, \
            psycopg.connect(dsn, autocommit=True) as second:
        first.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        first.execute(f"SELECT FROM {main.qualified}")
        second.execute(f"UPDATE {main.qualified} SET {ident(value)} = 'x'"
                       f" WHERE {ident(main.key[0])} = 1")
        op = Update(main.label, None, where, ((value, "y"),))
        with pytest.raises(TxnAborted):
            run_step(first, render({main.label: main}, op), Step(op), "REPEATABLE READ", prov)
        first.execute("ROLLBACK")


def test_truncate_refused_outside_read_committed_is_accepted(workload: Any) -> None:
    """The one error accepted from inside capture: auditsql refuses such a
    TRUNCATE by design. Taken for any other statement's, it is not."""
    dsn, tables, prov = workload
    main = tables[0]
    assert attempt(dsn, tables, prov, Truncate(main.label, None), "REPEATABLE READ") == (
        "failed 55000")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.Error) as info:
            conn.execute(f"TRUNCATE {main.qualified}")
        conn.execute("ROLLBACK")
    assert why_not_the_workloads(info.value, prov) == (
        "raised inside audit.capture_truncate(), an audit function")


def test_frames_of_an_error_context() -> None:
    context = (
        'PL/pgSQL function "Odd ""schema""".f(integer) line 3 at RAISE\n'
        'SQL statement "INSERT INTO x VALUES (1)"\n'
        'SQL function "g" statement 1\n'
        "PL/pgSQL function capture_truncate() line 23 at RAISE"
    )
    assert frames(context) == [Frame('Odd "schema"', "f"), Frame(None, "g"),
                               Frame(None, "capture_truncate")]
    assert frames(None) == []


# --------------------------------------------------------------------------
# One serialization failure is accepted from inside capture
# --------------------------------------------------------------------------


DOOM_LOCK = 4242  # advisory lock the doomed transaction waits on, before capture runs


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_a_serializable_transaction_doomed_by_others_may_fail_inside_capture(
        audited_db: str, capture: str) -> None:
    """SSI dooms a pivot transaction (here, one whose update waits in a
    trigger that fires before capture) when a concurrent reader completes a
    dangerous structure; the doomed transaction fails at its next conflict
    check, capture's write to the log. The failure is the workload's."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        for statement in (
            "CREATE TABLE public.ta (id int PRIMARY KEY, v int)",
            "CREATE TABLE public.tb (id int PRIMARY KEY, v int)",
            "INSERT INTO public.ta VALUES (1, 0)",
            "INSERT INTO public.tb VALUES (1, 0)",
            f"""CREATE FUNCTION public.wait_for_the_test() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_advisory_xact_lock({DOOM_LOCK}); RETURN NULL; END $$""",
            # AFTER triggers fire in name order: this one before auditsql's.
            "CREATE TRIGGER a_wait AFTER UPDATE ON public.tb FOR EACH ROW"
            " EXECUTE FUNCTION public.wait_for_the_test()",
        ):
            conn.execute(statement)
        installer.attach(conn, ["public.tb"], AUDIT, capture=capture)
        prov = provenance(conn, ["public.tb"], AUDIT.schema)
        since = last_event_id(conn)
        conn.execute("SELECT pg_advisory_lock(%s)", (DOOM_LOCK,))
        with psycopg.connect(audited_db, autocommit=True) as pivot, \
                psycopg.connect(audited_db, autocommit=True) as out, \
                psycopg.connect(audited_db, autocommit=True) as reader:
            # pivot -rw-> out, and out commits first.
            pivot.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            pivot.execute("SELECT * FROM public.ta")
            out.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            out.execute("UPDATE public.ta SET v = 1")
            out.execute("COMMIT")
            update = Update("tb", None, Where(), ())
            outcome: list[BaseException | str] = []

            def write() -> None:
                try:
                    outcome.append(run_step(pivot, "UPDATE public.tb SET v = 1", Step(update),
                                            "SERIALIZABLE", prov))
                except BaseException as exc:  # looked at below
                    outcome.append(exc)

            worker = threading.Thread(target=write)
            worker.start()
            wait_until_blocked(conn, worker)
            # reader -rw-> pivot: the pivot is doomed.
            reader.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            reader.execute("SELECT * FROM public.tb")
            conn.execute("SELECT pg_advisory_unlock(%s)", (DOOM_LOCK,))
            worker.join()
            reader.execute("ROLLBACK")
            pivot.execute("ROLLBACK")
        [failed] = outcome
        assert isinstance(failed, TxnAborted), failed
        error = failed.__cause__
        assert isinstance(error, psycopg.Error) and error.sqlstate == "40001"
        assert error.diag.message_detail in ALREADY_DOOMED
        assert [f.name for f in frames(error.diag.context)] == [
            f"capture_{scalar(conn, 'SELECT %s::regclass::oid', ('public.tb',))}"]
        assert last_event_id(conn) == since, "nothing was recorded"


def wait_until_blocked(conn: psycopg.Connection[Any], worker: threading.Thread) -> None:
    """Wait until a session waits for DOOM_LOCK."""
    for _ in range(500):
        if scalar(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND objid = %s AND NOT granted", (DOOM_LOCK,)):
            return
        assert worker.is_alive(), "the update did not wait"
        time.sleep(0.01)
    raise AssertionError("the update did not wait for the lock")


def scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]
