"""Fixtures for the property tests: a database with auditsql installed and
the replay helpers (schema ``replay``) next to it."""

from __future__ import annotations

import psycopg
import pytest

from auditsql import installer
from auditsql.render import Settings

AUDIT = Settings()

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


@pytest.fixture
def audited_db(db: str) -> str:
    """DSN of a fresh database with auditsql and the replay helpers installed."""
    with psycopg.connect(db, autocommit=True) as conn:
        installer.install(conn, AUDIT)
        conn.execute(REPLAY_SQL)
    return db
