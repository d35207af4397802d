-- drop_bound_check: drop the CHECK constraint create_partition gave an
-- events partition (named after it, <partition>_bound) once the partition
-- is attached and its bound enforces the same range. Nothing happens when
-- the constraint is gone already. Runs with the caller's rights; called by
-- attach_partition, and by install for partitions attached by an earlier
-- version.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.drop_bound_check(p_partition regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_name name;
BEGIN
    SELECT k.conname INTO v_name
    FROM pg_constraint AS k
    JOIN pg_class AS c ON c.oid = k.conrelid
    WHERE k.conrelid = p_partition AND k.contype = 'c' AND c.relispartition
      AND k.conname = c.relname || '_bound';
    IF FOUND THEN
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', p_partition, v_name);
    END IF;
END
$fn$;
