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
    -- SELECT on every member but those on which the owner role held it
    -- before the first attach: attach granted it on the others, and the
    -- event triggers on each partition made since.
    RETURN QUERY  -- a table dropped since attach has nothing left to revoke
    SELECT format('REVOKE SELECT ON %s FROM %I', m.rel, {{ owner | literal }})
    FROM (SELECT c.oid::regclass AS rel FROM pg_class AS c WHERE c.oid = p_table
          UNION
          SELECT r.relid FROM pg_partition_tree(p_table) AS r) AS m
    WHERE m.rel::oid <> ALL (v_was.select_kept)
      AND has_table_privilege({{ owner | literal }}, m.rel, 'SELECT');
    -- USAGE on a schema goes with the last audited table that needs it:
    -- while another one (or a partition of one) lives in a schema whose
    -- USAGE this table's attach granted, the record passes to it, and its
    -- TRUNCATE capture keeps reading its rows.
    UPDATE {{ schema | ident }}.tables AS t
       SET granted_usage = ARRAY(SELECT DISTINCT u FROM unnest(t.granted_usage || h.schemas) AS u ORDER BY 1)
      FROM (SELECT o.relid, array_agg(g.nsp) AS schemas
            FROM unnest(v_was.granted_usage) AS g(nsp)
            CROSS JOIN LATERAL (
                SELECT a.relid FROM {{ schema | ident }}.tables AS a
                WHERE EXISTS (SELECT FROM pg_class AS c
                              WHERE c.relnamespace = g.nsp
                                AND (c.oid = a.relid
                                     OR c.oid IN (SELECT r.relid FROM pg_partition_tree(a.relid) AS r)))
                ORDER BY a.relid LIMIT 1) AS o
            GROUP BY o.relid) AS h
     WHERE t.relid = h.relid;
    RETURN QUERY
    SELECT format('REVOKE USAGE ON SCHEMA %I FROM %I', n.nspname, {{ owner | literal }})
    FROM pg_namespace AS n
    WHERE n.oid = ANY (v_was.granted_usage)
      AND NOT EXISTS (SELECT FROM {{ schema | ident }}.tables AS t
                      WHERE n.oid = ANY (t.granted_usage));
END
$fn$;
