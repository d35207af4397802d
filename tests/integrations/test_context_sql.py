"""The statement that carries the context: any text a client sends (a
User-Agent header) reaches the settings exactly, in one round trip with
BEGIN, and a failure leaves no transaction open."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditsql.integrations import psycopg as audit_psycopg
from auditsql.integrations.context import AuditContext, bind
from tests.harness.templates import Templates
from tests.sql.sqltools import Conn, connect

# Text PostgreSQL can hold: no NUL, no lone surrogate.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=1024)
SETTINGS = ("auditsql.actor_id", "auditsql.actor_email", "auditsql.actor_role",
            "auditsql.ip_address", "auditsql.user_agent", "auditsql.request_id")


@pytest.fixture(scope="module")
def conn(templates: Templates) -> Iterator[Conn]:
    """A connection out of autocommit to a database with auditsql."""
    with templates.installed_database() as dsn, connect(dsn, autocommit=False) as c:
        yield c


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.tuples(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT))
def test_any_text_reaches_the_settings_exactly(conn: Conn, values: tuple[str, ...]) -> None:
    context = AuditContext(*values)
    audit_psycopg.begin(conn, context)
    try:
        read = conn.execute(
            "SELECT " + ", ".join(f"current_setting('{s}', true) AS s{i}"
                                  for i, s in enumerate(SETTINGS))).fetchone()
    finally:
        conn.rollback()
    assert read is not None
    assert tuple(read.values()) == tuple(v or "" for v in values)


def test_a_failure_leaves_no_transaction(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidSchemaName):
        audit_psycopg.begin(conn, AuditContext(actor_id="a"), schema="nowhere")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    conn.execute("SELECT 1")
    conn.rollback()


def test_begin_refuses_an_open_transaction(conn: Conn) -> None:
    conn.execute("SELECT 1")
    with pytest.raises(psycopg.ProgrammingError, match="needs an idle connection"):
        audit_psycopg.begin(conn, AuditContext(actor_id="a"))
    conn.rollback()


def _sent(conn: Conn, tmp_path: Path, work: Callable[[], object]) -> list[str]:
    """The messages *conn* sent to the server while *work* ran, as libpq
    traces them ("Query", "Parse", "Sync", ..., each with its text)."""
    trace = tmp_path / f"trace-{len(list(tmp_path.iterdir()))}"
    with trace.open("w") as out:
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            work()
        finally:
            conn.pgconn.untrace()
    return [line.split("\t", 2)[2] for line in trace.read_text().splitlines()
            if line.startswith("F\t")]


def _round_trips(messages: list[str]) -> int:
    """Each simple query, or each Sync ending an extended one, waits for
    the server once."""
    return sum(1 for m in messages if m.startswith(("Query", "Sync")))


def test_the_context_costs_no_round_trip(conn: Conn, tmp_path: Path) -> None:
    """README: a database hook sends the context at the start of every
    transaction "with the driver's own `BEGIN` where the driver allows, so
    that it costs no round trip": a psycopg transaction carrying a context
    waits for the server as often as the same transaction without one, its
    BEGIN and set_context travelling in one message."""
    def plain() -> None:
        with conn.transaction():
            conn.execute("SELECT 1")

    def audited() -> None:
        with bind(AuditContext(actor_id="u-1", request_id="r-1")), \
                audit_psycopg.transaction(conn):
            assert conn.execute(
                "SELECT current_setting('auditsql.actor_id', true)").fetchone() == {
                "current_setting": "u-1"}

    without, with_context = _sent(conn, tmp_path, plain), _sent(conn, tmp_path, audited)
    assert _round_trips(without) == 3, without  # BEGIN, SELECT, COMMIT
    assert _round_trips(with_context) == _round_trips(without), with_context
    first = with_context[0]
    assert first.startswith("Query") and "BEGIN;" in first and '"set_context"(' in first, first
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
