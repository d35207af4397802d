-- create_partition: a table to become an events partition, made apart so
-- that it can be filled before anyone sees it. The CHECK constraint spares
-- ATTACH PARTITION a scan; ATTACH clones the row guard onto it.
-- Not SECURITY DEFINER: its callers run as the owner role.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.create_partition(
    p_name text,
    p_from timestamptz,
    p_to   timestamptz)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rel  regclass;
    v_brin regclass;
BEGIN
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.events INCLUDING ALL EXCLUDING COMMENTS, '
                   'CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L))',
                   {{ schema | literal }}, p_name, {{ schema | literal }},
                   p_name || '_bound', p_from, p_to);
    v_rel := format('%I.%I', {{ schema | literal }}, p_name)::regclass;
    -- A BRIN index built on an empty table summarizes its first block range
    -- at once, and every insert into that range's 128 pages then widens the
    -- summary and writes it to the WAL: about 12,000 instructions an event
    -- (docs/performance.md). Unsummarized, a range costs an insert one
    -- lookup, and scans read it whole. autosummarize has autovacuum
    -- summarize each range once the next one starts (LIKE copies the
    -- parent's index, which cannot carry the option: see
    -- setup/partition_brin.sql), so that the unsummarized tail, which every
    -- scan by time or id reads whole (seal's included), stays short.
    FOR v_brin IN
        SELECT i.indexrelid::regclass
        FROM pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_am AS a ON a.oid = c.relam
        WHERE i.indrelid = v_rel AND a.amname = 'brin'
    LOOP
        PERFORM pg_catalog.brin_desummarize_range(v_brin, 0);
        EXECUTE format('ALTER INDEX %s SET (autosummarize = on)', v_brin);
    END LOOP;
    EXECUTE format('CREATE TRIGGER auditsql_guard_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %I.guard()',
                   {{ schema | literal }}, p_name, {{ schema | literal }});
    EXECUTE format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER auditsql_guard_statement',
                   {{ schema | literal }}, p_name);
    EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', {{ schema | literal }}, p_name);
    -- Its creator, the owner role, holds every privilege on it: not these.
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.%I FROM %I',
                   {{ schema | literal }}, p_name, {{ owner | literal }});
    RETURN v_rel;
END
$fn$;
