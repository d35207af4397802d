"""The workloads of the replay tests: writes, transactions and sessions as
data, the SQL of each write, and running sessions at once, each on its own
connection, telling the errors a workload provokes from any other."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from hypothesis import note

from tests.property.literals import literal
from tests.property.model import Column, Table, ident, quote
from tests.property.provenance import TXN_FATAL, Provenance, why_not_the_workloads


@dataclass(frozen=True)
class Where:
    """Rows where each column lies in [low, high] (all rows when empty)."""

    ranges: tuple[tuple[str, Any, Any], ...] = ()


@dataclass(frozen=True)
class Insert:
    table: str
    via: str | None
    rows: tuple[tuple[Any, ...], ...]
    conflict: str = ""


@dataclass(frozen=True)
class Update:
    table: str
    via: str | None
    where: Where
    assign: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Rewrite:
    """``SET column = template(column)``: a no-op, a numeric rescale, a key shift."""

    table: str
    via: str | None
    where: Where
    column: str
    template: str


@dataclass(frozen=True)
class Delete:
    table: str
    via: str | None
    where: Where


@dataclass(frozen=True)
class Truncate:
    table: str
    via: str | None


Op = Insert | Update | Rewrite | Delete | Truncate


@dataclass(frozen=True)
class Step:
    op: Op
    undo: bool = False


@dataclass(frozen=True)
class Txn:
    steps: tuple[Step, ...]
    isolation: str = "READ COMMITTED"
    commit: bool = True


@dataclass(frozen=True)
class Session:
    timezone: str
    bytea_output: str
    txns: tuple[Txn, ...]


@dataclass(frozen=True)
class Workload:
    """Rows every table starts with, then sessions run at once."""

    seed: tuple[Insert, ...]
    sessions: tuple[Session, ...]
    captures: tuple[str, ...] = ()  # capture mode of each table, as attached


def where_sql(table: Table, where: Where) -> str:
    conds = []
    for name, low, high in where.ranges:
        col = table.column(name)
        if low == high:
            conds.append(f"{ident(name)} = {literal(col, low)}")
        else:
            conds.append(f"{ident(name)} BETWEEN {literal(col, low)} AND {literal(col, high)}")
    return " WHERE " + " AND ".join(conds) if conds else ""


def render(tables: dict[str, Table], op: Op) -> str:
    """The SQL statement of ``op``."""
    table = tables[op.table]
    rel = table.relation(op.via)
    if isinstance(op, Insert):
        cols = table.insert_columns
        rows = ", ".join(row_sql(cols, row) for row in op.rows)
        names = ", ".join(ident(c.name) for c in cols)
        return f"INSERT INTO {rel} ({names}) VALUES {rows}{conflict_sql(table, op.conflict)}"
    if isinstance(op, Update):
        sets = ", ".join(f"{ident(n)} = {literal(table.column(n), v)}" for n, v in op.assign)
        return f"UPDATE {rel} SET {sets}{where_sql(table, op.where)}"
    if isinstance(op, Rewrite):
        expr = op.template.format(ident(op.column))
        return f"UPDATE {rel} SET {ident(op.column)} = {expr}{where_sql(table, op.where)}"
    if isinstance(op, Delete):
        return f"DELETE FROM {rel}{where_sql(table, op.where)}"
    return f"TRUNCATE {rel}"


def row_sql(cols: Sequence[Column], row: Sequence[Any]) -> str:
    """``(v1, v2, ...)`` for a VALUES list."""
    return "(" + ", ".join(literal(c, v) for c, v in zip(cols, row, strict=True)) + ")"


def conflict_sql(table: Table, conflict: str) -> str:
    if not conflict:
        return ""
    keys = ", ".join(ident(k) for k in table.key)
    if conflict == "nothing":
        return f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in table.value_columns)
    return f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def insert_key_sql(table: Table, *keys: tuple[Any, ...]) -> str:
    """INSERT rows giving only their key columns."""
    cols = [table.column(k) for k in table.key]
    values = ", ".join(row_sql(cols, key) for key in keys)
    return (f"INSERT INTO {table.qualified} ({', '.join(ident(c.name) for c in cols)})"
            f" VALUES {values}")


@dataclass
class Outcome:
    """What the sessions did: committed transaction tags and a statement log."""

    committed: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, line: str, count: str | None = None) -> None:
        with self.lock:
            self.log.append(line)
            if count:
                self.counts[count] += 1


class TxnAborted(Exception):
    """The server aborted the transaction (serialization failure, deadlock)."""


class NotTheWorkloads(AssertionError):
    """A statement failed with an error the workload did not provoke."""


def judge(exc: psycopg.Error, prov: Provenance, op: Op | None, isolation: str) -> None:
    """Accept an error the workload provoked on its own tables (``op`` None:
    at COMMIT); anything else fails the test. TRUNCATE is refused outside
    READ COMMITTED."""
    why = why_not_the_workloads(
        exc, prov,
        truncate_refused=isinstance(op, Truncate) and isolation != "READ COMMITTED",
        upsert=isinstance(op, Insert) and op.conflict == "update")
    if why is not None:
        raise NotTheWorkloads(f"{why}: {exc.sqlstate} {exc}\ncontext: {exc.diag.context}") from exc


def run_step(conn: psycopg.Connection[Any], statement: str, step: Step, isolation: str,
             prov: Provenance) -> str:
    """Run one statement in a savepoint; returns what became of it."""
    conn.execute("SAVEPOINT step")
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        judge(exc, prov, step.op, isolation)
        if exc.sqlstate in TXN_FATAL:
            raise TxnAborted(exc.sqlstate) from exc
        conn.execute("ROLLBACK TO SAVEPOINT step")
        return f"failed {exc.sqlstate}"
    conn.execute("ROLLBACK TO SAVEPOINT step" if step.undo else "RELEASE SAVEPOINT step")
    return "undone" if step.undo else "ok"


def end_txn(conn: psycopg.Connection[Any], txn: Txn, prov: Provenance) -> None:
    """COMMIT or ROLLBACK; a serialization failure at COMMIT aborts it."""
    try:
        conn.execute("COMMIT" if txn.commit else "ROLLBACK")
    except psycopg.Error as exc:
        judge(exc, prov, None, txn.isolation)
        if exc.sqlstate not in TXN_FATAL:
            raise
        raise TxnAborted(exc.sqlstate) from exc


def run_txn(conn: psycopg.Connection[Any], tables: dict[str, Table], txn: Txn, tag: str,
            outcome: Outcome, prov: Provenance) -> None:
    """Run one transaction, tagged with ``tag`` as its auditsql request id."""
    conn.execute(f"BEGIN ISOLATION LEVEL {txn.isolation}")
    conn.execute(f"SELECT set_config('auditsql.request_id', {quote(tag)}, true)")
    try:
        for step in txn.steps:
            statement = render(tables, step.op)
            result = run_step(conn, statement, step, txn.isolation, prov)
            outcome.record(f"{tag}: {statement} -> {result}", f"{type(step.op).__name__} {result}")
        end_txn(conn, txn, prov)
    except TxnAborted as exc:
        conn.execute("ROLLBACK")
        outcome.record(f"{tag}: aborted ({exc})", "aborted")
        return
    if txn.commit:
        with outcome.lock:
            outcome.committed.add(tag)
    outcome.record(f"{tag}: {'COMMIT' if txn.commit else 'ROLLBACK'}",
                   "committed" if txn.commit else "rolled back")


def run_session(dsn: str, tables: dict[str, Table], session: Session, name: str,
                outcome: Outcome, start: threading.Barrier, prov: Provenance) -> None:
    """Run a session's transactions on its own connection."""
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(f"SET TimeZone = {quote(session.timezone)}")
        conn.execute(f"SET bytea_output = {quote(session.bytea_output)}")
        conn.execute("SET deadlock_timeout = '20ms'")
        conn.execute("SET lock_timeout = '60s'")
        start.wait()
        for i, txn in enumerate(session.txns):
            run_txn(conn, tables, txn, f"{name}.{i}", outcome, prov)


def run_concurrently(dsn: str, tables: Sequence[Table], workload: Sequence[Session],
                     prov: Provenance) -> Outcome:
    """Run each session in its own thread; re-raise the first failure. ``prov``
    tells the workload's errors from others."""
    by_label = {t.label: t for t in tables}
    outcome = Outcome()
    start = threading.Barrier(len(workload))
    errors: list[BaseException] = []

    def target(i: int, session: Session) -> None:
        try:
            run_session(dsn, by_label, session, f"s{i}", outcome, start, prov)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=target, args=(i, s)) for i, s in enumerate(workload)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    note("\n".join(outcome.log))
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)),
                   errors[0])
    return outcome
