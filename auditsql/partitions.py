"""The log's partitions as retention and verify see them: how many, how far
ahead of the current month, the default partition, the oldest event, and
the next partition the policy makes due. Catalog and reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

MAX_MONTHS_AHEAD = 120


@dataclass(frozen=True)
class Partitions:
    """The log's partitions."""

    count: int  # monthly (non-default) partitions
    oldest: str | None
    newest: str | None
    current_month_covered: bool
    months_ahead: int  # consecutive months after the current one with a partition
    default_partition_empty: bool


@dataclass(frozen=True)
class Due:
    """The next partition retention will remove, and when."""

    partition: str
    range_from: datetime
    range_to: datetime
    due_at: datetime


_PARTITIONS = """
WITH p AS (SELECT name, range_from, range_to FROM {s}.event_partitions() WHERE NOT is_default),
m AS (SELECT g AS i,
             (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g)) AT TIME ZONE 'UTC' AS lo,
             (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g + 1)) AT TIME ZONE 'UTC' AS hi
      FROM generate_series(0, {limit}) AS g),
covered AS (SELECT min(m.i) FILTER (WHERE NOT EXISTS (
                SELECT FROM p WHERE p.range_from <= m.lo AND p.range_to >= m.hi)) AS first_gap
            FROM m)
SELECT (SELECT count(*) FROM p),
       (SELECT name FROM p ORDER BY range_from LIMIT 1),
       (SELECT name FROM p ORDER BY range_to DESC LIMIT 1),
       coalesce(first_gap, {limit} + 1),
       NOT EXISTS (SELECT FROM {s}.events_default)
FROM covered
"""


def partitions(cur: psycopg.Cursor, schema: str) -> Partitions:
    """How many partitions, the months covered ahead, the default partition."""
    cur.execute(sql.SQL(_PARTITIONS).format(s=sql.Identifier(schema),
                                            limit=sql.Literal(MAX_MONTHS_AHEAD + 1)))
    row = cur.fetchone()
    assert row is not None
    count, oldest, newest, first_gap, default_empty = row
    return Partitions(int(count), oldest, newest, first_gap > 0, max(int(first_gap) - 1, 0),
                      bool(default_empty))


def oldest_event(cur: psycopg.Cursor, schema: str) -> datetime | None:
    """occurred_at of the oldest event: the default partition, then the
    partitions from the oldest, stopping at the first that holds events (each
    read through the log with its range, so only that partition is scanned)."""
    ident = sql.Identifier(schema)
    cur.execute(sql.SQL("SELECT min(occurred_at) FROM {}.events_default").format(ident))
    row = cur.fetchone()
    found = row[0] if row else None
    cur.execute(sql.SQL("SELECT range_from, range_to FROM {}.event_partitions()"
                        " WHERE NOT is_default ORDER BY range_from").format(ident))
    for lo, hi in cur.fetchall():
        if found is not None and found < lo:
            break
        cur.execute(sql.SQL("SELECT min(occurred_at) FROM {}.events"
                            " WHERE occurred_at >= %s AND occurred_at < %s").format(ident),
                    (lo, hi))
        row = cur.fetchone()
        if row and row[0] is not None:
            return row[0] if found is None else min(found, row[0])
    return found


def next_due(cur: psycopg.Cursor, schema: str) -> Due | None:
    """The oldest monthly partition and when the policy makes it due."""
    cur.execute(sql.SQL(
        "SELECT p.name, p.range_from, p.range_to,"
        " ((p.range_to AT TIME ZONE 'UTC') + r.keep) AT TIME ZONE 'UTC'"
        " FROM {s}.event_partitions() AS p CROSS JOIN {s}.retention AS r"
        " WHERE NOT p.is_default AND isfinite(p.range_to) ORDER BY p.range_from LIMIT 1"
    ).format(s=sql.Identifier(schema)))
    row = cur.fetchone()
    return Due(*row) if row else None
