-- drop_triggers: remove every auditsql_* trigger from a table and its
-- partitions (triggers PostgreSQL cloned onto partitions go with their
-- parent). Used by attach, before it creates fresh ones, and by detach;
-- auditsql.permit_ddl lets the drops past the event triggers.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.drop_triggers(p_table regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_trigger record;
    v_permit  text := current_setting('auditsql.permit_ddl', true);
BEGIN
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    FOR v_trigger IN
        SELECT t.tgname, t.tgrelid::regclass AS rel
        FROM pg_trigger AS t
        WHERE t.tgrelid IN (SELECT p_table
                            UNION ALL
                            SELECT relid FROM pg_partition_tree(p_table))
          AND t.tgname LIKE 'auditsql\_%'
          AND NOT t.tgisinternal
          AND t.tgparentid = 0
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
