"""Undoing changes from the log: a row put back as it was at a time, or every
change of a request or a transaction undone, newest first.

Each undone event becomes one statement: a created row is deleted, a
deleted (or truncated) row inserted again, an updated row's changed columns
set back, its key included. Values travel as one jsonb literal read back
with jsonb_populate_record, so every type comes back through its own input
function; names and values are quoted by psycopg.sql."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import psycopg.rows
from psycopg import sql

from auditsql import catalog, db, errors
from auditsql import events as events_

DATA_ACTIONS = ("created", "updated", "deleted", "truncated")
# The values capture and erasure store in place of a value.
REDACTED = "[redacted]"
ERASED = "[erased]"


@dataclass(frozen=True)
class Target:
    """What to undo: one row back to a time, a request, or a transaction."""

    table: str | None = None
    entity_id: str | None = None
    to: datetime | None = None
    request_id: str | None = None
    txid: int | None = None

    def check(self) -> None:
        modes = [self.table is not None or self.entity_id is not None or self.to is not None,
                 self.request_id is not None, self.txid is not None]
        if sum(modes) != 1:
            raise errors.InvalidValue("name what to revert: a table, an id and --to TIME; "
                                      "or --request-id; or --txid")
        if modes[0] and (self.table is None or self.entity_id is None or self.to is None):
            raise errors.InvalidValue("reverting a row needs its table, its id and --to TIME")
        if self.request_id is not None and (not self.request_id or "\x00" in self.request_id):
            raise errors.InvalidValue(f"invalid request id {self.request_id!r}")
        if self.txid is not None and self.txid < 1:
            raise errors.InvalidValue(f"invalid transaction id {self.txid}: ids are positive")


@dataclass(frozen=True)
class Actor:
    """Who the revert's own changes are recorded as (audit.set_context)."""

    actor_id: str
    email: str | None = None
    role: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Step:
    """One undone event and the statement that undoes it."""

    event_id: int
    action: str  # the action undone: created, updated, deleted or truncated
    entity_type: str
    entity_id: str
    statement: str


@dataclass(frozen=True)
class Conflict:
    """A row the revert would overwrite: changed again (``later_event_id``)
    after the event being undone, or not as the log says it is."""

    entity_type: str
    entity_id: str
    event_id: int
    later_event_id: int | None
    later_action: str | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """The statements undoing the chosen events, newest event first, and the
    conflicts found. ``script`` is the whole, for psql; ``txid`` is set
    once applied: the revert's own transaction, itself revertible."""

    steps: list[Step]
    conflicts: list[Conflict]
    context: str | None = None
    txid: int | None = None
    applied: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def script(self) -> str:
        if not self.steps:
            return ""
        lines = ["BEGIN;"]
        if self.context:
            lines.append(self.context + ";")
        for step in self.steps:
            lines.append(one_line(f"-- event {step.event_id}: {step.action} "
                                  f"{step.entity_type} {step.entity_id}"))
            lines.append(step.statement + ";")
        lines.append("COMMIT;")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Table:
    entity_type: str
    name: sql.Identifier
    columns: dict[str, tuple[bool, bool]]  # name -> (generated, identity always)
    keys: list[str]
    exclude: set[str]
    redact: set[str]
    erased: bool


def _table(cur: psycopg.Cursor, schema: str, entity_type: str) -> _Table:
    cur.execute(
        sql.SQL("""
        SELECT n.nspname, c.relname, t.id_columns, t.exclude, t.redact,
               EXISTS (SELECT FROM {s}.events AS e
                       WHERE e.category = 'system' AND e.action = 'erased'
                         AND e.entity_type = %(t)s) AS erased,
               (SELECT jsonb_object_agg(a.attname, jsonb_build_array(a.attgenerated <> '',
                                                                     a.attidentity = 'a'))
                FROM pg_attribute AS a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN {s}.tables AS t ON t.relid = c.oid
        WHERE c.oid = to_regclass(%(t)s)""").format(s=sql.Identifier(schema)),
        {"t": entity_type})
    row = cur.fetchone()
    if row is None:
        raise errors.CannotRevert(f"table {entity_type} does not exist: its changes cannot be "
                                  "undone")
    nsp, rel, keys, exclude, redact, erased, cols = row
    if keys is None:
        raise errors.CannotRevert(f"table {entity_type} is not audited: attach it first, so "
                                  "that the revert is recorded")
    return _Table(entity_type, sql.Identifier(nsp, rel),
                  {k: (bool(v[0]), bool(v[1])) for k, v in (cols or {}).items()},
                  list(keys), set(exclude), set(redact), bool(erased))


def _row(table: _Table, image: str, columns: list[str]) -> sql.Composed:
    """``(SELECT r.c1, r.c2 FROM jsonb_populate_record(NULL::t, '{...}') AS r)``.

    ``image`` is the log's own jsonb text: a number loaded into Python and
    written back would lose its scale (0.00 becoming 0.0)."""
    return sql.SQL("(SELECT {} FROM jsonb_populate_record(NULL::{}, {}::jsonb) AS r)").format(
        sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns),
        table.name, sql.Literal(image))


def _names(columns: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def _key_match(table: _Table, image: str) -> sql.Composed:
    return sql.SQL("({}) = {}").format(_names(table.keys), _row(table, image, table.keys))


def _restorable(table: _Table, event: events_.Event, image: dict[str, Any],
                columns: list[str]) -> None:
    """Refuse a value the log does not hold."""
    for column in columns:
        if column not in table.columns:
            raise errors.CannotRevert(
                f"event {event.id} changed column {column} of {table.entity_type}, which no "
                "longer exists: it cannot be set back")
        value = image.get(column, _MISSING)
        if value is _MISSING and column in table.exclude:
            raise errors.CannotRevert(
                f"event {event.id}: column {column} of {table.entity_type} is excluded from "
                "auditing, so the log holds no value to restore")
        if value == REDACTED and column in table.redact:
            raise errors.CannotRevert(
                f"event {event.id}: column {column} of {table.entity_type} is redacted, so "
                "the log holds no value to restore")
        if value == ERASED and table.erased:
            raise errors.CannotRevert(
                f"event {event.id}: the value of column {column} of {table.entity_type} was "
                "erased from the log, so there is none to restore")


_MISSING = object()


def _images(cur: psycopg.Cursor, schema: str,
            chosen: list[events_.Event]) -> dict[int, tuple[str | None, str | None]]:
    """Each event's before and after, as the log's jsonb text."""
    cur.execute(sql.SQL("SELECT id, before::text, after::text FROM {}.history "
                        "WHERE id = ANY(%s)").format(sql.Identifier(schema)),
                ([e.id for e in chosen],))
    return {int(i): (b, a) for i, b, a in cur.fetchall()}


def _undo(cur: psycopg.Cursor, table: _Table, event: events_.Event,
          texts: tuple[str | None, str | None]) -> Step:
    """The statement undoing one event."""
    before_text, after_text = texts
    if event.action == "created":
        assert after_text is not None
        stmt = sql.SQL("DELETE FROM {} WHERE {}").format(
            table.name, _key_match(table, after_text))
    elif event.action in ("deleted", "truncated"):
        assert event.before is not None and before_text is not None
        image = event.before
        columns = [c for c, (generated, _) in table.columns.items()
                   if not generated and (c in image or c in table.exclude)]
        _restorable(table, event, image, columns)
        overriding = any(table.columns[c][1] for c in columns)
        stmt = sql.SQL("INSERT INTO {} ({}){} SELECT * FROM {} AS v").format(
            table.name, _names(columns),
            sql.SQL(" OVERRIDING SYSTEM VALUE" if overriding else ""),
            _row(table, before_text, columns))
    else:
        assert event.before is not None and before_text is not None and after_text is not None
        changed = [c for c in (event.changed_columns or [])
                   if not table.columns.get(c, (False, False))[0]]
        _restorable(table, event, event.before, changed)
        stmt = sql.SQL("UPDATE {} SET ({}) = {} WHERE {}").format(
            table.name, _names(changed), _row(table, before_text, changed),
            _key_match(table, after_text))
    return Step(event.id, event.action, table.entity_type, event.entity_id or "",
                stmt.as_string(cur.connection))


def _data_events(conn: psycopg.Connection, schema: str,
                 chosen: events_.Filter) -> list[events_.Event]:
    found = events_.select(conn, schema, chosen)
    return [e for e in found if e.category == "data" and e.action in DATA_ACTIONS]


def _row_events(cur: psycopg.Cursor, schema: str, entity_type: str, entity_id: str,
                to: datetime) -> list[events_.Event]:
    """The events of one row after ``to``, newest first, following its key
    back through key changes."""
    found: list[events_.Event] = []
    key, bound = entity_id, None
    while True:
        cond = sql.SQL("h.entity_type = {} AND h.entity_id = {} AND h.category = 'data' "
                       "AND h.action = ANY({})").format(
            sql.Literal(entity_type), sql.Literal(key), sql.Literal(list(DATA_ACTIONS)))
        if bound is not None:
            cond += sql.SQL(" AND h.id < {}").format(sql.Literal(bound))
        with cur.connection.cursor(row_factory=psycopg.rows.class_row(events_.Event)) as rows:
            rows.execute(events_._select(schema) + sql.SQL(" WHERE ") + cond
                         + sql.SQL(" ORDER BY h.id DESC"))
            batch = rows.fetchall()
        moved = False
        for event in batch:
            if event.occurred_at <= to:
                return found
            found.append(event)
            if (event.action == "updated" and event.previous_entity_id is not None
                    and event.previous_entity_id != event.entity_id):
                key, bound, moved = event.previous_entity_id, event.id, True
                break
        if not moved:
            return found


def _conflicts(cur: psycopg.Cursor, schema: str, chosen: list[events_.Event]) -> list[Conflict]:
    """Later data events, outside those undone, of a row they touched."""
    if not chosen:
        return []
    ids = [e.id for e in chosen]
    cur.execute(sql.SQL("""
        SELECT DISTINCT ON (x.id) e.entity_type, e.entity_id, e.id, x.id, x.action
        FROM {s}.events AS e
        JOIN {s}.events AS x
          ON x.entity_type = e.entity_type AND x.id > e.id AND x.category = 'data'
         AND (x.entity_id = e.entity_id OR x.previous_entity_id = e.entity_id)
        WHERE e.id = ANY(%(ids)s) AND x.id <> ALL(%(ids)s)
        ORDER BY x.id, e.id""").format(s=sql.Identifier(schema)), {"ids": ids})
    return [Conflict(t, i, e, x, a, f"changed again by event {x} ({a}) after event {e}")
            for t, i, e, x, a in cur.fetchall()]


def _choose(conn: psycopg.Connection, cur: psycopg.Cursor, schema: str,
            target: Target) -> list[events_.Event]:
    if target.request_id is not None:
        return _data_events(conn, schema, events_.Filter(request_id=target.request_id))
    if target.txid is not None:
        return _data_events(conn, schema, events_.Filter(txid=target.txid))
    assert target.table is not None and target.entity_id is not None and target.to is not None
    etype = catalog.resolve_table(cur, target.table)[1]
    key = events_.entity_id(cur, schema, etype, target.entity_id)
    return _row_events(cur, schema, etype, key, target.to)


def _context(cur: psycopg.Cursor, schema: str, actor: Actor | None) -> sql.Composed | None:
    if actor is None:
        return None
    return sql.SQL("SELECT {}.set_context(actor_id => {}, email => {}, role => {}, "
                   "request_id => {})").format(
        sql.Identifier(schema), *(sql.Literal(v) for v in (
            actor.actor_id, actor.email, actor.role, actor.request_id)))


def _plan(conn: psycopg.Connection, cur: psycopg.Cursor, schema: str, target: Target,
          actor: Actor | None) -> Plan:
    catalog.require_installed(cur, schema)
    chosen = _choose(conn, cur, schema, target)
    tables: dict[str, _Table] = {}
    texts = _images(cur, schema, chosen) if chosen else {}
    steps = []
    for event in chosen:
        assert event.entity_type is not None
        if event.entity_type not in tables:
            tables[event.entity_type] = _table(cur, schema, event.entity_type)
        steps.append(_undo(cur, tables[event.entity_type], event, texts[event.id]))
    conflicts = [] if target.to is not None else _conflicts(cur, schema, chosen)
    context = _context(cur, schema, actor)
    return Plan(steps, conflicts, context.as_string(conn) if context else None)


def plan(conn: psycopg.Connection, schema: str, target: Target,
         actor: Actor | None = None) -> Plan:
    """The statements that would undo ``target``, and the conflicts, changing
    nothing."""
    target.check()
    _check_actor(actor)
    with db.transaction(conn, read_only=True) as cur:
        return _plan(conn, cur, schema, target, actor)


def _check_actor(actor: Actor | None) -> None:
    if actor is not None and (not actor.actor_id or "\x00" in actor.actor_id):
        raise errors.InvalidValue(f"invalid actor {actor.actor_id!r}")


def apply(conn: psycopg.Connection, schema: str, target: Target, actor: Actor, *,
          force: bool = False) -> Plan:
    """Undo ``target`` in one transaction whose changes are recorded as the
    ``actor``'s. Refused (RevertConflict, nothing changed) when a row was
    changed again since, or a statement finds its row not as the log says,
    unless ``force``."""
    target.check()
    _check_actor(actor)
    with db.transaction(conn) as cur:
        found = _plan(conn, cur, schema, target, actor)
        if found.conflicts and not force:
            raise conflict_error(found.conflicts)
        if not found.steps:
            return found
        context = _context(cur, schema, actor)
        assert context is not None
        cur.execute(context)
        notes = []
        for step in found.steps:
            cur.execute(step.statement)
            if cur.rowcount != 1:
                problem = Conflict(step.entity_type, step.entity_id, step.event_id, None, None,
                                   f"undoing event {step.event_id} ({step.action}) found "
                                   f"{cur.rowcount} rows where the log says 1")
                if not force:
                    raise conflict_error([problem])
                notes.append(problem.reason)
        cur.execute("SELECT txid_current()")
        row = cur.fetchone()
        assert row is not None
    return Plan(found.steps, found.conflicts, found.context, int(row[0]), True, notes)


def conflict_error(conflicts: list[Conflict]) -> errors.RevertConflict:
    first = conflicts[0]
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    return errors.RevertConflict(
        one_line(f"{first.entity_type} {first.entity_id}: {first.reason}{more}; nothing "
                 "reverted (--force overwrites)"), conflicts)


def one_line(text: str) -> str:
    """A message kept on one line: names and ids may hold line breaks."""
    return " ".join(text.split())
