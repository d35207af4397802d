-- The BRIN indexes of the log's partitions summarize each block range once
-- the next one starts (autosummarize): otherwise only VACUUM summarizes
-- them, and on an insert-only partition autovacuum waits for a fifth of
-- the table to be new, a tail that every scan by time or id reads whole.
-- A partitioned index cannot take the option, so it is set on each
-- partition's index: here for the partitions there are (an earlier
-- version's, the default one), by create_partition for the next ones.
DO $brin$
DECLARE
    v_brin regclass;
BEGIN
    FOR v_brin IN
        SELECT i.indexrelid::regclass
        FROM pg_inherits AS h
        JOIN pg_index AS i ON i.indrelid = h.inhrelid
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_am AS a ON a.oid = c.relam
        WHERE h.inhparent = {{ ((schema | ident) ~ '.events') | literal }}::regclass
          AND a.amname = 'brin'
          AND NOT coalesce('autosummarize=on' = ANY (c.reloptions), false)
    LOOP
        EXECUTE format('ALTER INDEX %s SET (autosummarize = on)', v_brin);
    END LOOP;
END
$brin$;
