-- drop_bound_check: drops the CHECK constraint create_partition gave a
-- partition, once attached. Not SECURITY DEFINER: its callers
-- (attach_partition, install) run as the owner role.
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
