"""Reading the log: a row's history and its state at a moment, a table's
state, the changes of columns, and what a request, a transaction or an
actor did (the SQL is in sql/functions/*: entity_history, row_at, table_at,
request_events, transaction_events, actor_events; the view audit.changes;
docs/reading.md). Snapshots record the rows a table had before auditing
began, one committed batch at a time (snapshot_batch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from auditsql import catalog, db, errors

# The reading functions raise object_not_in_prerequisite_state for a table
# that is not audited, and invalid_parameter_value for an id that cannot be
# one of the table's.
_ERRORS: db.Errors = {pgerrors.ObjectNotInPrerequisiteState: errors.NotAudited,
                      pgerrors.InvalidParameterValue: errors.InvalidEntityId}
_TABLE_ERRORS: db.Errors = {pgerrors.ObjectNotInPrerequisiteState: errors.NotAudited}

Row = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One event, with whole rows (a row of audit.history)."""

    id: int
    occurred_at: datetime
    txid: int
    category: str
    action: str
    admin: bool
    entity_type: str | None
    entity_id: str | None
    previous_entity_id: str | None
    caused_by: int | None
    actor_id: str | None
    actor_email: str | None
    actor_role: str | None
    ip_address: str | None
    ip_address_raw: str | None
    user_agent: str | None
    request_id: str | None
    db_user: str
    application_name: str | None
    client_addr: str | None
    changed_columns: list[str] | None
    before: Row | None
    after: Row | None


@dataclass(frozen=True)
class Change:
    """One column one data event changed (a row of audit.changes)."""

    event_id: int
    occurred_at: datetime
    entity_type: str
    entity_id: str
    column_name: str
    old_value: Any
    new_value: Any
    actor_id: str | None
    actor_email: str | None
    actor_role: str | None
    is_admin: bool
    request_id: str | None
    action: str


_EVENT_FIELDS = [f.name for f in fields(Event)]
_CHANGE_FIELDS = [f.name for f in fields(Change)]


def _event(row: Row) -> Event:
    values = {name: row[name] for name in _EVENT_FIELDS}
    for name in ("ip_address", "client_addr"):
        if values[name] is not None:
            values[name] = str(values[name])
    return Event(**values)


def _columns(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _table(cur: psycopg.Cursor, schema: str, name: str) -> int:
    """The table's oid, once auditsql is known to be installed."""
    catalog.require_installed(cur, schema)
    oid, _ = catalog.resolve_table(cur, name)
    return oid


def _entity(entity_id: str) -> str:
    if not isinstance(entity_id, str) or not entity_id or "\x00" in entity_id:
        raise errors.InvalidEntityId(f"invalid entity id {entity_id!r}")
    return entity_id


def history(conn: psycopg.Connection, schema: str, table: str, entity_id: str) -> list[Event]:
    """Every event of one row under each key it has had, oldest first."""
    _entity(entity_id)
    with db.transaction(conn, read_only=True, errors_as=_ERRORS) as cur:
        oid = _table(cur, schema, table)
        with conn.cursor(row_factory=dict_row) as rows:
            rows.execute(sql.SQL("SELECT {} FROM {}.entity_history(%s::oid::regclass, %s)").format(
                _columns(_EVENT_FIELDS), sql.Identifier(schema)), (oid, entity_id))
            return [_event(r) for r in rows.fetchall()]


def row_at(conn: psycopg.Connection, schema: str, table: str, entity_id: str,
           at: datetime) -> Row | None:
    """The row as it was at ``at``, or None when no row had that key."""
    _entity(entity_id)
    with db.transaction(conn, read_only=True, errors_as=_ERRORS) as cur:
        oid = _table(cur, schema, table)
        cur.execute(sql.SQL("SELECT {}.row_at(%s::oid::regclass, %s, %s)").format(
            sql.Identifier(schema)), (oid, entity_id, at))
        found = cur.fetchone()
        return None if found is None else found[0]


def table_at(conn: psycopg.Connection, schema: str, table: str, at: datetime) -> dict[str, Row]:
    """Every row as it was at ``at``: entity id -> row."""
    with db.transaction(conn, read_only=True, errors_as=_TABLE_ERRORS) as cur:
        oid = _table(cur, schema, table)
        cur.execute(sql.SQL("SELECT entity_id, row FROM {}.table_at(%s::oid::regclass, %s)").format(
            sql.Identifier(schema)), (oid, at))
        return {key: row for key, row in cur.fetchall()}


def changes(conn: psycopg.Connection, schema: str, table: str, entity_id: str | None = None,
            column: str | None = None) -> list[Change]:
    """The changed columns of a table's data events (of one row, of one
    column), oldest first."""
    if entity_id is not None:
        _entity(entity_id)
    with db.transaction(conn, read_only=True, errors_as=_ERRORS) as cur:
        oid = _table(cur, schema, table)
        cur.execute(sql.SQL("SELECT entity_type, entity_id FROM {}.audited_entity(%s::oid::regclass, %s)")
                    .format(sql.Identifier(schema)), (oid, entity_id))
        found = cur.fetchone()
        assert found is not None
        entity_type, normalized = found
        with conn.cursor(row_factory=dict_row) as rows:
            rows.execute(sql.SQL(
                "SELECT {} FROM {}.changes WHERE entity_type = %s"
                " AND (%s::text IS NULL OR entity_id = %s) AND (%s::text IS NULL OR column_name = %s)"
                " ORDER BY event_id, column_name").format(_columns(_CHANGE_FIELDS), sql.Identifier(schema)),
                (entity_type, normalized, normalized, column, column))
            return [Change(**{n: r[n] for n in _CHANGE_FIELDS}) for r in rows.fetchall()]


def events(conn: psycopg.Connection, schema: str, *, request_id: str | None = None,
           txid: int | None = None, actor_id: str | None = None, since: datetime | None = None,
           until: datetime | None = None, limit: int = 1000) -> list[Event]:
    """The events of one request, one transaction, or one actor from
    ``since`` up to ``until`` (at most ``limit``), oldest first."""
    given = [name for name, value in (("request_id", request_id), ("txid", txid),
                                      ("actor_id", actor_id)) if value is not None]
    if len(given) != 1:
        raise errors.InvalidValue("give exactly one of request_id, txid and actor_id")
    if actor_id is None and (since is not None or until is not None):
        raise errors.InvalidValue("since and until go with actor_id")
    if actor_id is not None and since is None:
        raise errors.InvalidValue("actor_id needs since: the start of the range")
    if limit < 1:
        raise errors.InvalidValue(f"invalid limit {limit}: give a positive number of events")
    s = sql.Identifier(schema)
    if request_id is not None:
        query = sql.SQL("SELECT {} FROM {}.request_events(%s)").format(_columns(_EVENT_FIELDS), s)
        params: tuple[object, ...] = (request_id,)
    elif txid is not None:
        query = sql.SQL("SELECT {} FROM {}.transaction_events(%s)").format(_columns(_EVENT_FIELDS), s)
        params = (txid,)
    else:
        query = sql.SQL("SELECT {} FROM {}.actor_events(%s, %s, %s, %s)").format(
            _columns(_EVENT_FIELDS), s)
        params = (actor_id, since, until, limit)
    with db.transaction(conn, read_only=True) as cur:
        catalog.require_installed(cur, schema)
        with conn.cursor(row_factory=dict_row) as rows:
            rows.execute(query, params)
            return [_event(r) for r in rows.fetchall()]


Progress = Callable[[int], None]

DEFAULT_BATCH_SIZE = 10_000
# The most rows a batch may lock: snapshot_batch takes an integer.
MAX_BATCH_SIZE = 2_147_483_647


def check_batch_size(batch_size: int) -> int:
    """``batch_size``, or InvalidValue when it is no positive number of rows
    a batch can hold."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) \
            or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise errors.InvalidValue(f"invalid batch size {batch_size}: give a positive number "
                                  f"of rows, at most {MAX_BATCH_SIZE}")
    return batch_size


def require_audited(conn: psycopg.Connection, schema: str, tables: list[str]) -> list[str]:
    """The schema-qualified names of ``tables``, once every one is known to
    exist (NoSuchTable) and to be audited (NotAudited), so that a snapshot
    of several tables starts only when each can be taken."""
    names = []
    with db.transaction(conn, read_only=True, errors_as=_TABLE_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        for table in tables:
            oid, qualified = catalog.resolve_table(cur, table)
            cur.execute(sql.SQL("SELECT FROM {}.audited_entity(%s::oid::regclass, NULL)").format(
                sql.Identifier(schema)), (oid,))
            names.append(qualified)
    return names


def snapshot(conn: psycopg.Connection, schema: str, table: str,
             batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None) -> int:
    """Record every row of an audited table as a snapshot event, one
    committed batch at a time; ``progress`` is called with the rows recorded
    so far after each batch. Returns the rows recorded."""
    check_batch_size(batch_size)
    after: Any = None
    total = 0
    while True:
        with db.transaction(conn, errors_as=_TABLE_ERRORS) as cur:
            oid = _table(cur, schema, table)
            cur.execute(sql.SQL("SELECT recorded, next_after FROM {}.snapshot_batch("
                                "%s::oid::regclass, %s, %s)").format(sql.Identifier(schema)),
                        (oid, None if after is None else Jsonb(after), batch_size))
            found = cur.fetchone()
            assert found is not None
            recorded, after = found
        total += recorded
        if progress is not None:
            progress(total)
        if after is None:
            return total
