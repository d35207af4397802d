"""Reading the log: events chosen by table, entity, actor, action, request
and time (``auditsql log``), one event by its id, and a stream of events for
export. Events are :class:`auditsql.reading.Event`, as a row's history."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime

import psycopg
import psycopg.rows
from psycopg import sql
from psycopg.abc import Buffer

from auditsql import catalog, db, errors
from auditsql.reading import Event

MAX_LIMIT = 1_000_000


COLUMNS = [f.name for f in fields(Event)]


@dataclass(frozen=True)
class Filter:
    """Which events: every condition given must hold (None: any)."""

    table: str | None = None  # a table name, resolved as PostgreSQL would
    entity_id: str | None = None  # as the log spells it, or as typed (42, [7, "b"])
    actor: str | None = None  # actor_id
    action: str | None = None
    request_id: str | None = None
    txid: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    after_id: int | None = None  # events with a greater id only


def _select(schema: str) -> sql.Composed:
    """The event columns from the history view, the address as text."""
    cols = [sql.SQL("host(h.{0}) AS {0}" if c in ("ip_address", "client_addr")
                    else "h.{0}::text AS {0}" if c == "category" else "h.{0}").format(
                sql.Identifier(c)) for c in COLUMNS]
    return sql.SQL("SELECT {} FROM {}.history AS h").format(
        sql.SQL(", ").join(cols), sql.Identifier(schema))


def entity_type(cur: psycopg.Cursor, schema: str, table: str) -> str:
    """The entity type of events of ``table``: the table as it is named now,
    or, for a table dropped since, the name its events carry."""
    try:
        return catalog.resolve_table(cur, table)[1]
    except errors.NoSuchTable:
        wanted = table if "." in table else f"public.{table}"
        cur.execute(sql.SQL("SELECT EXISTS (SELECT FROM {}.events WHERE entity_type = %s)")
                    .format(sql.Identifier(schema)), (wanted,))
        row = cur.fetchone()
        if row and row[0]:
            return wanted
        raise


def entity_id(cur: psycopg.Cursor, schema: str, etype: str | None, given: str) -> str:
    """An entity id as the log spells it ([7, "b"] for [7,"b"])."""
    if not given or "\x00" in given:
        raise errors.InvalidValue(f"invalid entity id {given!r}")
    if etype is None:
        return given
    cur.execute(sql.SQL("SELECT {}.normalize_entity_id(%s, %s)").format(sql.Identifier(schema)),
                (etype, given))
    row = cur.fetchone()
    return str(row[0]) if row and row[0] is not None else given


def _where(cur: psycopg.Cursor, schema: str, chosen: Filter) -> sql.Composable:
    conds: list[sql.Composable] = []
    etype = None
    if chosen.table is not None:
        etype = entity_type(cur, schema, chosen.table)
        conds.append(sql.SQL("h.entity_type = {}").format(sql.Literal(etype)))
    if chosen.entity_id is not None:
        key = sql.Literal(entity_id(cur, schema, etype, chosen.entity_id))
        conds.append(sql.SQL("(h.entity_id = {0} OR h.previous_entity_id = {0})").format(key))
    for column, value in (("actor_id", chosen.actor), ("action", chosen.action),
                          ("request_id", chosen.request_id), ("txid", chosen.txid)):
        if value is not None:
            conds.append(sql.SQL("h.{} = {}").format(sql.Identifier(column), sql.Literal(value)))
    if chosen.since is not None:
        conds.append(sql.SQL("h.occurred_at >= {}").format(sql.Literal(chosen.since)))
    if chosen.until is not None:
        conds.append(sql.SQL("h.occurred_at < {}").format(sql.Literal(chosen.until)))
    if chosen.after_id is not None:
        conds.append(sql.SQL("h.id > {}").format(sql.Literal(chosen.after_id)))
    if not conds:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)


def check(chosen: Filter, limit: int | None = None) -> None:
    """Refuse values no event could match, before reaching the database."""
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidValue(f"invalid limit {limit}: use 1 to {MAX_LIMIT}")
    if chosen.after_id is not None and chosen.after_id < 0:
        raise errors.InvalidValue(f"invalid event id {chosen.after_id}: ids are positive")
    for name, value in (("actor", chosen.actor), ("action", chosen.action),
                        ("request id", chosen.request_id)):
        if value is not None and (not value or "\x00" in value):
            raise errors.InvalidValue(f"invalid {name} {value!r}")
    if chosen.since and chosen.until and chosen.since >= chosen.until:
        raise errors.InvalidValue("the start of the period (--since) must come before its end "
                                  "(--until)")


def select(conn: psycopg.Connection, schema: str, chosen: Filter, *, limit: int | None = None,
           newest_first: bool = True) -> list[Event]:
    """The events ``chosen`` picks, newest first unless told otherwise."""
    check(chosen, limit)
    with db.transaction(conn, read_only=True) as cur:
        catalog.require_installed(cur, schema)
        query = _select(schema) + _where(cur, schema, chosen) + sql.SQL(
            " ORDER BY h.id DESC" if newest_first else " ORDER BY h.id")
        if limit is not None:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        with conn.cursor(row_factory=psycopg.rows.class_row(Event)) as rows:
            rows.execute(query)
            return rows.fetchall()


def event(conn: psycopg.Connection, schema: str, event_id: int) -> Event:
    """One event, or NoSuchEvent."""
    if event_id < 1:
        raise errors.InvalidValue(f"invalid event id {event_id}: ids are positive")
    with db.transaction(conn, read_only=True) as cur:
        catalog.require_installed(cur, schema)
        with conn.cursor(row_factory=psycopg.rows.class_row(Event)) as rows:
            rows.execute(_select(schema) + sql.SQL(" WHERE h.id = {}").format(
                sql.Literal(event_id)))
            found = rows.fetchone()
    if found is None:
        raise errors.NoSuchEvent(f"no event {event_id} in the log")
    return found


# What export writes: each event as stored in the events table (an update's
# before holds the old values of the changed columns only; the whole old row
# is after || before). Reading the history view instead costs more than
# half the throughput, for what the stored event already says.
EXPORT_FORMATS = ("jsonl", "csv")
EXPORT_COLUMNS = ["id", "occurred_at", "txid", "category", "action", "admin", "entity_type",
                  "entity_id", "previous_entity_id", "caused_by", "actor_id", "actor_email",
                  "actor_role", "ip_address", "ip_address_raw", "client_addr", "user_agent",
                  "request_id", "db_user", "application_name", "changed_columns", "before",
                  "after"]
# Columns whose text form is already JSON (numbers, booleans, jsonb), and
# the category, an enum whose labels need no escaping: to_json looks up the
# type of its argument on every call.
_JSON_AS_TEXT = {"id", "txid", "caused_by", "admin", "before", "after"}
_JSON_QUOTED = {"category"}


def _json_line() -> sql.Composable:
    """One JSON object per event and its line end, built by concatenation:
    several times faster than row_to_json, which looks up each column's
    type for every row. Keys in EXPORT_COLUMNS order, id first. The pieces
    are joined pairwise, ((a || b) || (c || d)), rather than in one chain,
    which would copy the line built so far at each of some forty steps."""
    parts: list[sql.Composable] = []
    for i, column in enumerate(EXPORT_COLUMNS):
        value = (sql.SQL("h.{}::text") if column in _JSON_AS_TEXT
                 else sql.SQL("'\"' || h.{}::text || '\"'") if column in _JSON_QUOTED
                 else sql.SQL("to_json(h.{})::text")).format(sql.Identifier(column))
        key = ("{" if i == 0 else ",") + json.dumps(column) + ":"
        parts.append(sql.SQL("({} || coalesce({}, 'null'))").format(sql.Literal(key), value))
    parts.append(sql.SQL("E'}\\n'"))
    while len(parts) > 1:
        parts = [sql.SQL("({} || {})").format(*parts[i:i + 2]) if i + 1 < len(parts)
                 else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def export_query(cur: psycopg.Cursor, schema: str, chosen: Filter, fmt: str) -> sql.Composed:
    """The COPY statement streaming the events ``chosen`` picks, in id order.

    jsonl: each line is one text value, sent in COPY's binary format, which
    copies it as it is, where the text and csv formats scan every byte for
    characters to escape or quote; ``export`` takes the line out of each
    binary row. The lines are built before the sort, which lets parallel
    workers build them; building them after a sort of the stored columns
    spills half as much but leaves all of the building to one process, for
    the same CPU time in all and a longer wait."""
    if fmt not in EXPORT_FORMATS:
        raise errors.InvalidValue(f"unknown export format {fmt!r}: use jsonl or csv")
    source = sql.SQL(" FROM {}.events AS h").format(sql.Identifier(schema)) + _where(
        cur, schema, chosen) + sql.SQL(" ORDER BY h.id")
    if fmt == "jsonl":
        return sql.SQL("COPY (SELECT {}{}) TO STDOUT (FORMAT binary)").format(
            _json_line(), source)
    return sql.SQL("COPY (SELECT {}{}) TO STDOUT (FORMAT csv, HEADER {})").format(
        sql.SQL(", ").join(sql.SQL("h.{}").format(sql.Identifier(c)) for c in EXPORT_COLUMNS),
        source, sql.SQL("false" if chosen.after_id is not None else "true"))


# COPY's binary format: a header (signature, flags, then the length of an
# extension area and the area), then per row a field count (int16) and per
# field a length (int32) and the bytes; an int16 -1 at the end.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 8


def _binary_lines(copy: Iterable[Buffer]) -> Iterator[Buffer]:
    """The one field of each row of a binary COPY of one text column."""
    first = True
    for data in copy:
        if first:
            first = False
            if bytes(data[:len(_SIGNATURE)]) != _SIGNATURE:
                raise errors.DatabaseError("the server sent COPY data without its binary header")
            data = data[_HEADER + int.from_bytes(data[_HEADER - 4:_HEADER], "big"):]
        if len(data) > 2:
            yield data[6:]


@dataclass(frozen=True)
class Exported:
    """What an export wrote: how many events, and the id of the last one
    (None when none), after which ``after_id`` resumes."""

    events: int
    last_id: int | None


def export(conn: psycopg.Connection, schema: str, chosen: Filter, fmt: str,
           zone_name: str) -> Iterator[bytes]:
    """The exported bytes, one event a chunk (csv: the header first, unless
    ``chosen.after_id``, which continues an export), read
    with COPY as the server sends them: memory stays flat however many."""
    check(chosen)
    with db.transaction(conn, read_only=True) as cur:
        catalog.require_installed(cur, schema)
        cur.execute("SELECT set_config('TimeZone', %s, true), "
                    "set_config('DateStyle', 'ISO, YMD', true)", (zone_name,))
        with cur.copy(export_query(cur, schema, chosen, fmt)) as copy:
            for chunk in _binary_lines(copy) if fmt == "jsonl" else copy:
                yield bytes(chunk)


def last_id(chunk: bytes, fmt: str) -> int:
    """The event id a chunk of ``export`` holds."""
    if fmt == "jsonl":
        return int(json.loads(chunk)["id"])
    return int(chunk.split(b",", 1)[0])
