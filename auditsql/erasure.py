"""Erasure: remove values from past events (``audit.erase``), for a
person's right to erasure or a column that should have been redacted from
the start. Only audit administrators may; each erasure is recorded."""

from __future__ import annotations

import psycopg
from psycopg import sql

from auditsql import catalog, db, errors

MAX_REASON = 1000


def erase(conn: psycopg.Connection, schema: str, entity_type: str, entity_id: str | None,
          columns: list[str] | None, reason: str) -> int:
    """Replace with '[erased]' the values of ``columns`` (None: every column
    but the key) in the past events of one entity (``entity_id`` None: of
    every entity of ``entity_type``); returns how many events changed. One
    transaction."""
    if not reason.strip() or len(reason) > MAX_REASON or "\x00" in reason:
        raise errors.InvalidValue(f"erasing needs a reason of 1 to {MAX_REASON} characters")
    if columns is not None and (not columns or any(not c for c in columns)):
        raise errors.InvalidValue("name the columns to erase, or none for all but the key")
    with db.transaction(conn) as cur:
        catalog.require_installed(cur, schema)
        try:
            with conn.transaction():
                cur.execute(sql.SQL("SELECT {}.erase(%s, %s, %s, %s)").format(sql.Identifier(schema)),
                            (entity_type, entity_id, columns, reason))
        except psycopg.errors.ObjectInUse as exc:
            raise errors.HeldEntity(str(db.translate(exc))) from exc
        row = cur.fetchone()
    assert row is not None
    return int(row[0])
