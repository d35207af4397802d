"""The replay check: the tables of an example created and attached, then
the oracle: every data event well formed and from committed work, and the
events of each table, replayed in id order into a shadow table by the
helpers in schema ``replay`` (REPLAY_SQL), rebuild the table exactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg
import psycopg.rows

from auditsql import installer
from auditsql.render import Settings
from tests.property.model import Names, Table, ident, quote, schema_sql
from tests.property.workload import Insert, render

AUDIT = Settings()
DATA_ACTIONS = ("created", "updated", "deleted", "truncated")
SEED_TAG = "seed"

# replay.apply(entity_type, shadow, since) applies the data events of one
# entity_type with id > since to the shadow table, in id order: a before image
# removes one shadow row equal to it (text form of the whole row, so numeric
# scale, bytea, arrays and the generated columns must all match), an after
# image is inserted with its generated columns left to the shadow table.
# Rows are named ROW(s.*), never s, which a column called "s" would shadow.
# Images are read from audit.history, where an update's before is the whole
# old row (audit.events stores the old values of the changed columns only).
# entity_id and changed_columns restate the event format's definitions.
REPLAY_SQL = """
CREATE SCHEMA replay;

CREATE FUNCTION replay.apply(p_entity text, p_shadow regclass, p_since bigint)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_cols  text;
    v_event record;
    v_rows  integer;
    v_count integer := 0;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
    FROM pg_attribute
    WHERE attrelid = p_shadow AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    FOR v_event IN
        SELECT id, action, before, after FROM audit.history
        WHERE entity_type = p_entity AND id > p_since
          AND action IN ('created', 'updated', 'deleted', 'truncated')
        ORDER BY id
    LOOP
        IF v_event.before IS NOT NULL THEN
            EXECUTE format(
                'DELETE FROM %1$s WHERE ctid = (SELECT s.ctid FROM %1$s AS s '
                'WHERE ROW(s.*)::text = jsonb_populate_record(NULL::%1$s, $1)::text LIMIT 1)',
                p_shadow)
            USING v_event.before;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            IF v_rows <> 1 THEN
                RAISE EXCEPTION 'replay: % event % has a before image matching no replayed row: %',
                    v_event.action, v_event.id, v_event.before;
            END IF;
        END IF;
        IF v_event.after IS NOT NULL THEN
            EXECUTE format('INSERT INTO %1$s (%2$s) '
                           'SELECT %2$s FROM jsonb_populate_record(NULL::%1$s, $1)',
                           p_shadow, v_cols)
            USING v_event.after;
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$fn$;

CREATE FUNCTION replay.entity_id(p_image jsonb, p_keys text[])
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $fn$
    SELECT CASE WHEN cardinality(p_keys) = 1 THEN p_image ->> p_keys[1]
                ELSE (SELECT jsonb_agg(p_image -> k ORDER BY o)::text
                      FROM unnest(p_keys) WITH ORDINALITY AS u(k, o)) END
$fn$;

CREATE FUNCTION replay.changed(p_before jsonb, p_after jsonb)
RETURNS text[]
LANGUAGE sql
IMMUTABLE
AS $fn$
    SELECT ARRAY(SELECT k FROM jsonb_object_keys(p_after) AS k
                 WHERE (p_before -> k)::text IS DISTINCT FROM (p_after -> k)::text
                 ORDER BY octet_length(k), k COLLATE "C")
$fn$;
"""


def create_tables(conn: psycopg.Connection[Any], names: Names, tables: Sequence[Table],
                  modes: Sequence[str] = ()) -> tuple[int, tuple[Table, ...]]:
    """Create and attach the tables (in capture ``modes``, row by default);
    returns the last event id before the workload and the tables with their
    expected entity types."""
    for statement in schema_sql(names, tables):
        conn.execute(statement)
    modes = tuple(modes) or ("row",) * len(tables)
    attached = tuple(attach_table(conn, table, mode) for table, mode in zip(tables, modes))
    return last_event_id(conn), attached


def attach_table(conn: psycopg.Connection[Any], table: Table, capture: str = "row") -> Table:
    """Attach ``table`` (by its key columns unless it has a primary key);
    returns it with its expected entity type."""
    table = replace(table, entity_type=entity_type(conn, table))
    id_columns = None if table.primary_key else list(table.key)
    assert installer.attach(conn, [table.qualified], AUDIT, id_columns=id_columns,
                            capture=capture).names == [table.entity_type]
    for statement in table.after_attach_sql():
        conn.execute(statement)
    return table


def entity_type(conn: psycopg.Connection[Any], table: Table) -> str:
    """``format('%I.%I', schema, table)``: the name events give the table."""
    row = conn.execute("SELECT format('%%I.%%I', %s::text, %s::text)",
                       (table.schema, table.name)).fetchone()
    assert row is not None
    return str(row[0])


def insert_seed(conn: psycopg.Connection[Any], tables: Sequence[Table],
                seed: Sequence[Insert]) -> None:
    """Insert the starting rows in one transaction tagged ``SEED_TAG``."""
    by_label = {t.label: t for t in tables}
    with conn.transaction():
        conn.execute(f"SELECT set_config('auditsql.request_id', {quote(SEED_TAG)}, true)")
        for insert in seed:
            conn.execute(render(by_label, insert))


def last_event_id(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM audit.events").fetchone()
    assert row is not None
    return int(row[0])


EVENT_PROBLEMS = """
SELECT id, action, problem, entity_id, previous_entity_id, changed_columns,
       before::text, after::text
FROM (
    SELECT e.*, CASE
        WHEN e.action = 'updated' AND stored.before IS DISTINCT FROM (
                 SELECT jsonb_object_agg(k, e.before -> k) FROM unnest(e.changed_columns) AS k)
            THEN 'the stored before is not the old values of the changed columns'
        WHEN (e.action = 'created') <> (e.before IS NULL AND e.after IS NOT NULL)
          OR (e.action = 'updated') <> (e.before IS NOT NULL AND e.after IS NOT NULL)
          OR (e.action IN ('deleted', 'truncated')) <> (e.before IS NOT NULL AND e.after IS NULL)
            THEN 'wrong images for the action'
        WHEN e.entity_id IS DISTINCT FROM replay.entity_id(coalesce(e.after, e.before), %(keys)s)
            THEN 'entity_id is not the key of the row'
        WHEN e.previous_entity_id IS DISTINCT FROM
             CASE WHEN e.action = 'updated'
                  THEN nullif(replay.entity_id(e.before, %(keys)s), e.entity_id) END
            THEN 'previous_entity_id is not the changed old key'
        WHEN e.changed_columns IS DISTINCT FROM
             CASE WHEN e.action = 'updated' THEN replay.changed(e.before, e.after) END
            THEN 'changed_columns are not the columns that differ'
        WHEN e.action = 'updated' AND cardinality(e.changed_columns) = 0
            THEN 'an update that changed nothing was recorded'
        WHEN e.action = 'updated' AND e.before -> %(rid)s IS DISTINCT FROM e.after -> %(rid)s
            THEN 'before and after images of different rows'
        WHEN txid_status(e.txid) IS DISTINCT FROM 'committed'
            THEN 'written by a transaction that did not commit'
        WHEN NOT (e.request_id = ANY (%(committed)s))
            THEN 'not from a committed workload transaction'
    END AS problem
    FROM audit.history AS e
    JOIN audit.events AS stored USING (id)
    WHERE e.entity_type = %(entity_type)s AND e.id > %(since)s AND e.action = ANY (%(actions)s)
) AS checked
WHERE problem IS NOT NULL
ORDER BY id
LIMIT 5
"""


def check_events(conn: psycopg.Connection[Any], table: Table, since: int,
                 committed: set[str]) -> None:
    """Every data event of ``table`` is well formed and comes from committed work."""
    problems = conn.execute(EVENT_PROBLEMS, {
        "keys": list(table.key), "rid": table.rid, "committed": sorted(committed),
        "entity_type": table.entity_type, "since": since, "actions": list(DATA_ACTIONS),
    }).fetchall()
    assert not problems, f"{table.entity_type}: bad events:\n" + "\n".join(map(repr, problems))


def check_entity_types(conn: psycopg.Connection[Any], tables: Sequence[Table], since: int) -> None:
    """Data events name only the audited tables (partitions go by their root)."""
    rows = conn.execute(
        "SELECT DISTINCT entity_type FROM audit.events WHERE id > %s AND action = ANY (%s)",
        (since, list(DATA_ACTIONS)),
    ).fetchall()
    stray = {r[0] for r in rows} - {t.entity_type for t in tables}
    assert not stray, f"events for unexpected entity types: {sorted(stray)}"


def rows_text(conn: psycopg.Connection[Any], relation: str) -> Counter[str]:
    """The rows of ``relation`` (partitions included) as text, with multiplicity."""
    return Counter(r[0] for r in conn.execute(f"SELECT ROW(t.*)::text FROM {relation} AS t"))


def shadow_table(table: Table) -> str:
    """Where ``table`` is replayed."""
    return ident("replay", f"shadow_{table.label}")


def replay(conn: psycopg.Connection[Any], table: Table,
           since: int) -> tuple[Counter[str], Counter[str]]:
    """Replay ``table``'s events into its shadow table; returns the rows of
    the table and of the replay."""
    shadow = shadow_table(table)
    conn.execute(f"DROP TABLE IF EXISTS {shadow}")
    conn.execute(f"CREATE TABLE {shadow} (LIKE {table.qualified} INCLUDING GENERATED)")
    try:
        conn.execute("SELECT replay.apply(%s, %s::regclass, %s)",
                     (table.entity_type, shadow, since))
    except psycopg.errors.RaiseException as exc:
        raise AssertionError(f"{table.entity_type}: {exc.diag.message_primary}") from None
    return rows_text(conn, table.qualified), rows_text(conn, shadow)


def check_replay(conn: psycopg.Connection[Any], table: Table, since: int) -> None:
    """Replay ``table``'s events and compare the replay with the table."""
    real, replayed = replay(conn, table, since)
    missing, extra = real - replayed, replayed - real
    assert not missing and not extra, (
        f"{table.entity_type}: replay differs from the table\n"
        f"  in the table only: {sorted(missing.elements())}\n"
        f"  in the replay only: {sorted(extra.elements())}"
    )


def check_oracle(conn: psycopg.Connection[Any], tables: Sequence[Table], since: int,
                 committed: set[str]) -> None:
    """Every oracle check: event format, provenance, and the replay itself."""
    with conn.transaction(force_rollback=True):
        check_entity_types(conn, tables, since)
        for table in tables:
            check_events(conn, table, since, committed)
            check_replay(conn, table, since)


COVERAGE_SQL = """
SELECT count(*) FILTER (WHERE action = 'created') AS created,
       count(*) FILTER (WHERE action = 'updated') AS updated,
       count(*) FILTER (WHERE action = 'updated' AND previous_entity_id IS NOT NULL)
           AS "key changed",
       count(*) FILTER (WHERE action = 'updated' AND EXISTS (
           SELECT FROM jsonb_each(after) AS a
           WHERE a.value = before -> a.key AND a.value::text <> (before -> a.key)::text))
           AS "numeric scale change",
       count(*) FILTER (WHERE action = 'deleted') AS deleted,
       count(*) FILTER (WHERE action = 'truncated') AS truncated,
       count(*) FILTER (WHERE action = 'updated' AND entity_type = %(part)s)
           AS "partitioned updated"
FROM audit.events
WHERE id > %(since)s
"""


def event_coverage(conn: psycopg.Connection[Any], tables: Sequence[Table],
                   since: int) -> Counter[str]:
    """How many events of each interesting sort the example produced."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(COVERAGE_SQL, {"part": tables[3].entity_type,
                                         "since": since}).fetchone()
    assert row is not None
    return Counter({k: int(v) for k, v in row.items()})
