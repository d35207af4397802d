-- partition_brin: readies the BRIN indexes of a partition of the log.
-- autosummarize on: autovacuum summarizes each block range once the next
-- one starts; otherwise only VACUUM does, and on an insert-only partition
-- autovacuum waits for a fifth of the table to be new, a tail that every
-- scan by time or id (sealing's among them) reads whole. A partitioned
-- index cannot take the option, so each partition's index gets it. For a
-- partition just made (p_new), block range 0 is left unsummarized too: a
-- BRIN index built on an empty table summarizes it at once, and every
-- insert into its 128 pages would then widen the summary and write it to
-- the WAL, about 12,000 instructions an event (docs/performance.md);
-- unsummarized, a range costs an insert one lookup.
-- Not SECURITY DEFINER: its callers (create_partition, install) run as the
-- owner role.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.partition_brin(
    p_partition regclass,
    p_new       boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_brin    regclass;
    v_options text[];
BEGIN
    FOR v_brin, v_options IN
        SELECT i.indexrelid::regclass, c.reloptions
        FROM pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_am AS a ON a.oid = c.relam
        WHERE i.indrelid = p_partition AND a.amname = 'brin'
    LOOP
        IF p_new THEN
            PERFORM brin_desummarize_range(v_brin, 0);
        END IF;
        IF NOT coalesce('autosummarize=on' = ANY (v_options), false) THEN
            EXECUTE format('ALTER INDEX %s SET (autosummarize = on)', v_brin);
        END IF;
    END LOOP;
END
$fn$;
