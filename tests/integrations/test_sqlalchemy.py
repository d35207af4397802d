"""SQLAlchemy 2 with a pooled sync engine (psycopg): sessions in many
threads as different users, nested transactions, savepoints rolled back."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from auditsql.integrations.context import AuditContext, bind, reset, set_current  # noqa: E402
from auditsql.integrations.sqlalchemy import instrument  # noqa: E402
from tests.integrations.conftest import Bouncer  # noqa: E402
from tests.integrations.tools import misattributed, note_events, sa_url, via  # noqa: E402
from tests.sql.sqltools import Conn  # noqa: E402

INSERT = text("INSERT INTO notes (author, request, body) VALUES (:a, :r, 'x')")
THREADS = 8
REQUESTS = 5


class Refused(Exception):
    pass


def request(engine: Engine, client: int, number: int) -> int:
    """One unit of work; returns how many events it leaves."""
    actor = None if number % 5 == 4 else f"user-{client}-{number}"
    rid = f"req-{client}-{number}"
    with bind(AuditContext.of(actor_id=actor, request_id=rid)), Session(engine) as session:
        with session.begin():
            session.execute(INSERT, {"a": actor, "r": rid})
            inner = f"{actor}-inner"
            with bind(actor_id=inner):
                with session.begin_nested():
                    session.execute(INSERT, {"a": inner, "r": rid})
            # A context put in force inside a savepoint rolled back goes with
            # it on the server, but stays in force here: the write after it
            # carries it again.
            savepoint = session.begin_nested()
            session.connection()  # the SAVEPOINT now, under the request's context
            token = set_current(AuditContext.of(actor_id=f"{actor}-late", request_id=rid))
            try:
                session.execute(INSERT, {"a": f"{actor}-late", "r": rid})
                savepoint.rollback()
                session.execute(INSERT, {"a": f"{actor}-late", "r": rid})
            finally:
                reset(token)
            session.execute(INSERT, {"a": actor, "r": rid})
    return 4


@pytest.mark.parametrize("mode", ["direct", "transaction"])
def test_sessions_in_threads_carry_their_own_context(
        mode: str, notes_db: str, su: Conn, pgbouncer: Bouncer) -> None:
    bouncer = None if mode == "direct" else pgbouncer("transaction", 2)
    engine = create_engine(sa_url(via(bouncer, notes_db), "postgresql+psycopg"),
                           pool_size=2, max_overflow=0,
                           connect_args={"prepare_threshold": None})
    instrument(engine)
    totals: list[int] = []
    errors: list[BaseException] = []

    def client(number: int) -> None:
        try:
            totals.extend(request(engine, number, n) for n in range(REQUESTS))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert errors == []
    assert note_events(su) == sum(totals)
    assert misattributed(su) == []


def test_autocommit_isolation_is_left_alone(notes_db: str, su: Conn) -> None:
    """In AUTOCOMMIT isolation each statement is its own transaction: the
    integration sends nothing, and the writes carry no context."""
    engine: Any = create_engine(sa_url(notes_db, "postgresql+psycopg"),
                                isolation_level="AUTOCOMMIT")
    instrument(engine)
    with bind(AuditContext.of(actor_id="alice")), engine.connect() as conn:
        conn.execute(INSERT, {"a": None, "r": None})
    engine.dispose()
    assert note_events(su) == 1
    assert misattributed(su) == []
