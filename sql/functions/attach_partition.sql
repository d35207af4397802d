-- attach_partition: attach a table made by create_partition to the log as
-- the partition for [p_from, p_to) (SHARE UPDATE EXCLUSIVE on the log; its
-- CHECK constraint spares the scan), drop that CHECK constraint, then stamp
-- the partition and its statement guard with their fingerprints. Once
-- attached, the partition bound says what the constraint said, and the
-- constraint would cost every insert into the partition an expression
-- compiled and evaluated per statement (see docs/performance.md); the
-- partition is already locked ACCESS EXCLUSIVE by the attach. Runs with the caller's rights;
-- called by ensure_partitions, maintain and apply_retention, which run as
-- the owner and let their DDL past the event triggers (auditsql.permit_ddl).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.attach_partition(
    p_partition regclass,
    p_from      timestamptz,
    p_to        timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %I.events ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   {{ schema | literal }}, p_partition, p_from, p_to);
    PERFORM {{ schema | ident }}.drop_bound_check(p_partition);
    PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_class'::regclass, ARRAY[p_partition::oid]);
    PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_trigger'::regclass, array_agg(g.oid))
    FROM pg_trigger AS g
    WHERE g.tgrelid = p_partition AND g.tgname = 'auditsql_guard_statement';
END
$fn$;
