"""Legal holds: entities whose events retention keeps (``place_hold``,
``release_hold`` and ``normalize_entity_id`` in SQL; docs/retention.md).
Entity ids are read as the log spells them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from auditsql import catalog, db, errors

MAX_REASON = 1000
MAX_ENTITY = 10_000

# place_hold raises no_data_found for a hold that would hold nothing,
# release_hold undefined_object for an entity not held.
_ERRORS: db.Errors = {pgerrors.UndefinedObject: errors.NoSuchHold,
                      pgerrors.NoDataFound: errors.HoldsNothing}


@dataclass(frozen=True)
class Hold:
    """A legal hold on one entity."""

    entity_type: str
    entity_id: str
    reason: str
    placed_at: datetime
    placed_by: str


@dataclass(frozen=True)
class Placed:
    """What placing a legal hold did."""

    placed: bool  # False: the entity was already held (nothing changed)
    hold: Hold  # the hold in force, with the entity id as the log spells it
    events: int  # the entity's events in the log


def validate_text(value: str, what: str, maximum: int) -> None:
    """InvalidValue for text no server could take."""
    if "\x00" in value:
        raise errors.InvalidValue(f"{what} may not contain NUL characters")
    if len(value) > maximum:
        raise errors.InvalidValue(f"{what} may be at most {maximum} characters")


def _validate_entity(entity_type: str, entity_id: str) -> None:
    validate_text(entity_type, "the entity type", MAX_ENTITY)
    validate_text(entity_id, "the entity id", MAX_ENTITY)


def holds(cur: psycopg.Cursor, schema: str) -> list[Hold]:
    """Every hold in force, oldest first."""
    cur.execute(sql.SQL("SELECT entity_type, entity_id, reason, placed_at, placed_by"
                        " FROM {}.legal_holds ORDER BY placed_at, entity_type, entity_id")
                .format(sql.Identifier(schema)))
    return [Hold(*row) for row in cur.fetchall()]


def _hold(cur: psycopg.Cursor, schema: str, entity_type: str, entity_id: str) -> Hold | None:
    cur.execute(sql.SQL("SELECT entity_type, entity_id, reason, placed_at, placed_by"
                        " FROM {}.legal_holds WHERE entity_type = %s AND entity_id = %s")
                .format(sql.Identifier(schema)), (entity_type, entity_id))
    row = cur.fetchone()
    return Hold(*row) if row else None


def normalize_entity_id(cur: psycopg.Cursor, schema: str, entity_type: str,
                        entity_id: str) -> str:
    """``entity_id`` as the log spells it (``audit.normalize_entity_id``):
    '[1001,1]' is '[1001, 1]' for a table keyed by two integers."""
    cur.execute(sql.SQL("SELECT {}.normalize_entity_id(%s, %s)").format(sql.Identifier(schema)),
                (entity_type, entity_id))
    row = cur.fetchone()
    return str(row[0]) if row and row[0] is not None else entity_id


def _count_events(cur: psycopg.Cursor, schema: str, entity_type: str, entity_id: str) -> int:
    """The entity's events, not counting the records of its legal holds."""
    cur.execute(sql.SQL("SELECT count(*) FROM {}.events WHERE entity_type = %s AND entity_id = %s"
                        " AND action NOT IN ('legal_hold_placed', 'legal_hold_released')")
                .format(sql.Identifier(schema)), (entity_type, entity_id))
    row = cur.fetchone()
    return int(row[0]) if row else 0


def place(conn: psycopg.Connection, schema: str, entity_type: str, entity_id: str,
          reason: str, *, future: bool = False) -> Placed:
    """Put an entity under legal hold; the id is read as the log spells it.
    A hold matching no event in the log is refused (HoldsNothing) unless
    ``future``: it then holds the entity's future events. Holding an entity
    already held changes nothing."""
    _validate_entity(entity_type, entity_id)
    if not reason.strip():
        raise errors.InvalidValue("a legal hold needs a reason (--reason)")
    validate_text(reason, "the reason", MAX_REASON)
    with db.transaction(conn, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        normalized = normalize_entity_id(cur, schema, entity_type, entity_id)
        try:
            with conn.transaction():
                cur.execute(db.call(schema, "place_hold", *[sql.Placeholder()] * 4),
                            (entity_type, entity_id, reason, future))
        except pgerrors.NoDataFound as exc:
            given = f" (given as {entity_id})" if normalized != entity_id else ""
            raise errors.HoldsNothing(
                f"no event in the log has entity type {entity_type} and entity id {normalized}"
                f"{given}, so the hold would hold nothing; check the id against"
                " events.entity_id, or add --future to hold the entity's future events"
            ) from exc
        row = cur.fetchone()
        hold = _hold(cur, schema, entity_type, normalized)
        assert hold is not None
        return Placed(bool(row and row[0]), hold,
                      _count_events(cur, schema, entity_type, hold.entity_id))


def release(conn: psycopg.Connection, schema: str, entity_type: str, entity_id: str,
            reason: str | None = None) -> Hold:
    """Lift the legal hold on an entity (the id read as :func:`place` reads
    it, or as given for a hold made by hand); returns the hold released."""
    _validate_entity(entity_type, entity_id)
    if reason is not None:
        validate_text(reason, "the reason", MAX_REASON)
    with db.transaction(conn, errors_as=_ERRORS) as cur:
        catalog.require_installed(cur, schema)
        normalized = normalize_entity_id(cur, schema, entity_type, entity_id)
        hold = (_hold(cur, schema, entity_type, normalized)
                or _hold(cur, schema, entity_type, entity_id))
        cur.execute(db.call(schema, "release_hold", *[sql.Placeholder()] * 3),
                    (entity_type, entity_id, reason))
    assert hold is not None
    return hold
