-- detach_prepare: the audit side of detach, as the owner role; returns the
-- REVOKE statements the table's owner runs.
DROP FUNCTION IF EXISTS {{ schema | ident }}.detach_prepare(regclass);
CREATE FUNCTION {{ schema | ident }}.detach_prepare(p_table regclass)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was    {{ schema | ident }}.tables;
    v_owner  oid := (SELECT c.relowner FROM pg_class AS c WHERE c.oid = p_table);
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    -- As session_user: current_user is the owner role here.
    IF NOT pg_has_role(session_user, {{ operator | literal }}, 'MEMBER')
       OR (v_owner IS NOT NULL AND NOT pg_has_role(session_user, v_owner, 'MEMBER')) THEN
        RAISE EXCEPTION 'auditsql: role % may not detach %: only its owner (%), in role %, can',
            session_user, p_table, v_owner::regrole, {{ operator | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO v_was FROM {{ schema | ident }}.tables WHERE relid = p_table FOR UPDATE;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    EXECUTE format('DROP FUNCTION IF EXISTS %I.%I() CASCADE', {{ schema | literal }}, 'capture_' || p_table::oid);
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
    IF v_was IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM {{ schema | ident }}.tables WHERE relid = p_table;
    PERFORM {{ schema | ident }}.record_system_event('detached', p_table::text, NULL, NULL);
    IF v_was.granted_select THEN
        RETURN QUERY  -- a table dropped since attach has nothing left to revoke
        SELECT format('REVOKE SELECT ON %s FROM %I', m.rel, {{ owner | literal }})
        FROM (SELECT c.oid::regclass AS rel FROM pg_class AS c WHERE c.oid = p_table
              UNION
              SELECT r.relid FROM pg_partition_tree(p_table) AS r) AS m;
    END IF;
    RETURN QUERY
    SELECT format('REVOKE USAGE ON SCHEMA %I FROM %I', n.nspname, {{ owner | literal }})
    FROM pg_namespace AS n
    WHERE n.oid = ANY (v_was.granted_usage)
      AND NOT EXISTS (SELECT FROM {{ schema | ident }}.tables AS t
                      WHERE n.oid = ANY (t.granted_usage));
END
$fn$;
