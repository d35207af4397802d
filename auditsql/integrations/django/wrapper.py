"""The database hook: an ``execute_wrapper`` that makes every transaction a
request opens carry the context in force.

Before each statement it looks at the driver connection:

- outside a transaction, out of autocommit (an ``atomic`` block, with or
  without ``ATOMIC_REQUESTS``, about to send its first statement): it opens
  the transaction with the context, in the round trip of the ``BEGIN`` the
  driver would send (psycopg 3; psycopg 2 costs one round trip more);
- outside a transaction in autocommit mode (a write outside any
  ``atomic``): the statement is its own transaction, so it is wrapped in
  one that carries the context (``BEGIN; set_context``, the statement,
  ``COMMIT``: two round trips more). Statements that start with ``SELECT``
  or ``SHOW`` are taken as reads and run as they are;
- inside a transaction: the context is sent again only if it is not the
  one the transaction carries (a block bound another actor, a login
  named the user, a rollback to a savepoint may have restored an older one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from auditsql.integrations.context import (
    Applied, begin_sql, current, set_context_sql,
)

IDLE = 0  # libpq's PQTRANS_IDLE, in psycopg 2 and 3 alike
INTRANS = 2
_READS = ("SELECT", "SHOW")


def _is_read(statement: str) -> bool:
    return statement.lstrip().upper().startswith(_READS)


class ContextWrapper:
    """``connection.execute_wrapper(ContextWrapper(schema))``."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.applied: dict[int, tuple[Any, Applied]] = {}

    def _state(self, raw: Any) -> Applied:
        held = self.applied.get(id(raw))
        if held is None or held[0] is not raw:
            held = (raw, Applied())
            self.applied[id(raw)] = held
        return held[1]

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
                 context: dict[str, Any]) -> Any:
        raw = context["connection"].connection
        status = raw.info.transaction_status
        wanted = current()
        state = self._state(raw)
        if status == IDLE:
            if raw.autocommit:
                if wanted is None or _is_read(sql):
                    return execute(sql, params, many, context)
                return self._own_transaction(raw, wanted, execute, sql, params, many, context)
            if wanted is not None:
                self._begin(raw, wanted)
            state.context = wanted
        elif status == INTRANS and state.needs(wanted):
            with raw.cursor() as cursor:
                cursor.execute(set_context_sql(wanted, self.schema))
            state.context = wanted
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("ROLLBACK TO"):
            state.forget()
        return result

    def _begin(self, raw: Any, wanted: Any) -> None:
        try:
            import psycopg
        except ImportError:
            psycopg = None
        if psycopg is not None and isinstance(raw, psycopg.Connection):
            from auditsql.integrations import psycopg as audit_psycopg
            audit_psycopg.begin(raw, wanted, schema=self.schema)
            return
        with raw.cursor() as cursor:  # the driver sends its BEGIN first
            cursor.execute(set_context_sql(wanted, self.schema))

    def _own_transaction(self, raw: Any, wanted: Any, execute: Callable[..., Any], sql: str,
                         params: Any, many: bool, context: dict[str, Any]) -> Any:
        with raw.cursor() as cursor:
            cursor.execute(begin_sql(wanted, self.schema))
        try:
            result = execute(sql, params, many, context)
        except BaseException:
            with raw.cursor() as cursor:
                cursor.execute("ROLLBACK")
            raise
        with raw.cursor() as cursor:
            cursor.execute("COMMIT")
        return result
