-- auditsql 0.1.0 to 0.2.0: what 0.2.0 changes in objects that keep state,
-- and the functions it defines with other arguments or no longer has.
-- Applied by the install script (setup/upgrade.sql) before it creates
-- anything, as the owner role; functions, views and triggers are re-created
-- from the 0.2.0 files after it. Installations made between the two
-- releases record 0.1.0 as well, so each statement allows for its change
-- being there already. Never edited once 0.2.0 is released.

-- audit.tables: whether explicit id columns are trusted without a unique
-- index (attach --trust-id-columns), and the capture triggers as attach or
-- refresh last recorded them, to tell later which were dropped, re-created
-- or left with a detached partition. Upgrade attaches every table again,
-- which records them.
ALTER TABLE {{ schema | ident }}.tables
    ADD COLUMN IF NOT EXISTS id_trusted          boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS triggers            jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS detached_partitions oid[]   NOT NULL DEFAULT '{}';
-- audit.tables: the members whose SELECT detach leaves, where 0.1.0 kept
-- one flag for the table and its partitions (detach revoked SELECT on all
-- of them if attach had granted it on any, on none otherwise).
DO $step$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute
                   WHERE attrelid = {{ (schema | ident ~ '.tables') | literal }}::pg_catalog.regclass
                     AND attname = 'select_kept' AND NOT attisdropped) THEN
        ALTER TABLE {{ schema | ident }}.tables ADD COLUMN select_kept oid[] NOT NULL DEFAULT '{}';
        UPDATE {{ schema | ident }}.tables AS t
           SET select_kept = CASE WHEN t.granted_select THEN '{}'::oid[]
                                  ELSE ARRAY(SELECT t.relid UNION SELECT r.relid FROM pg_catalog.pg_partition_tree(t.relid) AS r) END;
    END IF;
END
$step$;

-- The TRUNCATE trigger function every audited table shared: in 0.2.0 each
-- table's own capture function records TRUNCATE too, calling
-- capture_truncate(oid, oid). CASCADE drops the 0.1.0 TRUNCATE triggers;
-- upgrade attaches every table again in the same transaction, so no
-- TRUNCATE goes unrecorded.
DROP FUNCTION IF EXISTS {{ schema | ident }}.capture_truncate() CASCADE;
-- attach gained p_trust_id_columns (and earlier builds had fewer
-- parameters); detach drops the capture triggers itself.
DROP FUNCTION IF EXISTS {{ schema | ident }}.drop_triggers(regclass);
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach(regclass, text[]);
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach(regclass, text[], text);
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach(regclass, text[], text, text[], text[], jsonb, boolean);
-- attach and configure call p_strict p_require_actor, as the column is
-- named; CREATE OR REPLACE cannot rename a parameter, so the 0.1.0
-- functions go first (found by the old name, not to drop a new one).
DO $step$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
         WHERE n.nspname = {{ schema | literal }} AND p.proname IN ('attach', 'configure')
           AND 'p_strict' = ANY (p.proargnames)
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', v_function);
    END LOOP;
END
$step$;
-- set_retention gained p_under_a_year and p_shorten; place_hold, p_future.
DROP FUNCTION IF EXISTS {{ schema | ident }}.set_retention(text);
DROP FUNCTION IF EXISTS {{ schema | ident }}.place_hold(text, text, text);

-- Builds before 0.1.0 indexed entity ids with a two-column btree, or a hash
-- index; 0.1.0 with a btree on entity_id alone; 0.2.0 with a btree on the
-- id and the hash of the type (events_entity_idx, created by
-- tables/events.sql when missing).
DROP INDEX IF EXISTS {{ schema | ident }}.events_entity_idx;
DROP INDEX IF EXISTS {{ schema | ident }}.events_entity_hash;
DROP INDEX IF EXISTS {{ schema | ident }}.events_entity_id_idx;

-- 0.1.0's BRIN index on (occurred_at, id) gives way to events_brin on
-- (occurred_at, id, txid), which tables/events.sql creates.
DROP INDEX IF EXISTS {{ schema | ident }}.events_time_id_brin;

-- Reading the log (docs/reading.md): a request's events, and a row's later
-- keys from its earlier ones. Building them reads the whole log and holds
-- off its writes meanwhile.
CREATE INDEX IF NOT EXISTS events_request_id_idx
    ON {{ schema | ident }}.events (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_previous_entity_id_idx
    ON {{ schema | ident }}.events (previous_entity_id) WHERE previous_entity_id IS NOT NULL;
