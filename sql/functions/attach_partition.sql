-- attach_partition: attaches a table create_partition made, then drops its
-- CHECK constraint: the bound says the same, and the constraint would cost
-- every insert into the partition (docs/performance.md). ATTACH already
-- holds the partition ACCESS EXCLUSIVE, so the drop waits for no one.
-- Not SECURITY DEFINER: its callers run as the owner role.
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
