"""The statement that carries the context: any text a client sends (a
User-Agent header) reaches the settings exactly, in one round trip with
BEGIN, and a failure leaves no transaction open."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditsql.integrations import psycopg as audit_psycopg
from auditsql.integrations.context import AuditContext
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
