-- The BRIN indexes of the partitions there are (an earlier version's, the
-- default one) summarize each block range as the next one starts, as
-- create_partition makes those of the next ones (functions/partition_brin.sql).
DO $brin$
DECLARE
    v_partition regclass;
BEGIN
    FOR v_partition IN
        SELECT h.inhrelid::regclass
        FROM pg_inherits AS h
        WHERE h.inhparent = {{ ((schema | ident) ~ '.events') | literal }}::regclass
    LOOP
        PERFORM {{ schema | ident }}.partition_brin(v_partition, false);
    END LOOP;
END
$brin$;
