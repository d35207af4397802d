-- detach: stop auditing a table: its triggers and its generated capture
-- function go. Idempotent: detaching a table that is not audited does
-- nothing. A table dropped while audited is detached by its oid:
-- audit.detach(16384). The events already written stay in the log, and the
-- detach itself is recorded as an event. Revokes the SELECT and USAGE that
-- attach granted to the owner role, and only those.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.detach(p_table regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was  {{ schema | ident }}.tables;
    v_member regclass;
    v_schema text;
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF NOT pg_has_role(current_user, {{ owner | literal }}, 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not detach tables: it must be a member of %', current_user, {{ owner | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO v_was FROM {{ schema | ident }}.tables WHERE relid = p_table;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM {{ schema | ident }}.drop_triggers(p_table);
    EXECUTE format('DROP FUNCTION IF EXISTS %I.%I()', {{ schema | literal }}, 'capture_' || p_table::oid);
    IF v_was IS NULL THEN
        PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
        RETURN;
    END IF;
    IF v_was.granted_select THEN
        FOR v_member IN  -- a table dropped since attach has nothing left to revoke
            SELECT c.oid FROM pg_class AS c WHERE c.oid = p_table
            UNION
            SELECT relid FROM pg_partition_tree(p_table)
        LOOP
            EXECUTE format('REVOKE SELECT ON %s FROM %I', v_member, {{ owner | literal }});
        END LOOP;
    END IF;
    DELETE FROM {{ schema | ident }}.tables WHERE relid = p_table;
    -- USAGE that attach granted, on schemas no other audited table needs.
    FOR v_schema IN
        SELECT n.nspname FROM pg_namespace AS n
        WHERE n.oid = ANY (v_was.granted_usage)
          AND NOT EXISTS (SELECT FROM {{ schema | ident }}.tables AS t
                          WHERE n.oid = ANY (t.granted_usage))
    LOOP
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, {{ owner | literal }});
    END LOOP;
    PERFORM {{ schema | ident }}.record_system_event('detached', p_table::text, NULL, NULL);
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
