"""SQLAlchemy 2 (sync and asyncio engines): every transaction carries the
context in force (``auditsql.integrations.context``).

``instrument(engine)`` listens to the engine's events. Before each
statement it compares the context in force with the one the transaction
carries and, when they differ (the first statement of a transaction that
has a context, a block that bound another one, a rollback to a savepoint
that may have restored an older one), sends it:

- on psycopg 3 (sync), together with the ``BEGIN`` that opens the
  transaction, in one round trip: no round trip more;
- on other drivers (asyncpg among them), as one statement on the
  statement's cursor: one round trip more per transaction.

Connections in ``AUTOCOMMIT`` isolation are left alone: each statement is
its own transaction, and a context sent before it would be gone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from auditsql.context import DEFAULT_SCHEMA
from auditsql.integrations.context import Applied, current, set_context_sql

_STATE = "auditsql.applied"
_ROLLING_BACK = "auditsql.rolling_back"


def _state(conn: Connection) -> Applied:
    state = conn.info.get(_STATE)
    if state is None:
        state = conn.info[_STATE] = Applied()
    return state


def instrument(engine: Any, *, schema: str = DEFAULT_SCHEMA) -> None:
    """Make every transaction of *engine* (an ``Engine`` or ``AsyncEngine``)
    carry the context in force. Call once, after creating the engine."""
    target: Engine = getattr(engine, "sync_engine", engine)

    def begun(conn: Connection) -> None:
        # A new transaction carries no context until one is sent.
        _state(conn).context = None

    def ended(conn: Connection, *args: Any) -> None:
        if not conn.invalidated:  # else its DBAPI connection is gone, state and all
            _state(conn).forget()

    def rolling_back(conn: Connection, *args: Any) -> None:
        # Dispatched before the ROLLBACK TO SAVEPOINT runs: what it restores
        # is known only after it.
        conn.info[_ROLLING_BACK] = True

    def before_cursor_execute(conn: Connection, cursor: Any, statement: str,
                              parameters: Any, context: Any, executemany: bool) -> None:
        dbapi = conn.connection.dbapi_connection
        if getattr(dbapi, "autocommit", False):
            return
        state = _state(conn)
        if conn.info.pop(_ROLLING_BACK, False):
            state.forget()
            return
        wanted = current()
        if not state.needs(wanted):
            return
        driver = conn.connection.driver_connection
        if _idle_psycopg(driver):
            from auditsql.integrations import psycopg as audit_psycopg
            audit_psycopg.begin(driver, wanted, schema=schema)
        else:
            cursor.execute(set_context_sql(wanted, schema))
        state.context = wanted

    event.listen(target, "begin", begun)
    event.listen(target, "commit", ended)
    event.listen(target, "rollback", ended)
    event.listen(target, "rollback_savepoint", rolling_back)
    event.listen(target, "before_cursor_execute", before_cursor_execute)


def _idle_psycopg(driver: Any) -> bool:
    """Whether *driver* is a sync psycopg connection outside a transaction."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return (isinstance(driver, psycopg.Connection)
            and driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
