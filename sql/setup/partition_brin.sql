-- The BRIN indexes of the partitions there are (an earlier version's, the
-- default one) summarize each block range as the next one starts, as
-- create_partition makes those of the next ones (functions/partition_brin.sql).
SELECT {{ schema | ident }}.partition_brin(p.partition, false)
FROM {{ schema | ident }}.event_partitions() AS p;
