-- configure: changes audit.settings and regenerates every capture function,
-- which embeds them.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.configure(
    p_admin_roles   text[]  DEFAULT NULL,
    p_require_actor boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was {{ schema | ident }}.settings;
    v_now {{ schema | ident }}.settings;
    v_table regclass;
BEGIN
    -- As session_user: current_user is the owner role here.
    IF NOT pg_has_role(session_user, {{ admin | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not change settings: it must be a member of %', session_user, {{ admin | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_admin_roles IS NOT NULL AND (array_position(p_admin_roles, NULL) IS NOT NULL
                                      OR array_position(p_admin_roles, '') IS NOT NULL) THEN
        RAISE EXCEPTION 'auditsql: admin roles must be non-empty names'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_was FROM {{ schema | ident }}.settings FOR UPDATE;
    UPDATE {{ schema | ident }}.settings
       SET admin_roles = coalesce(p_admin_roles, admin_roles), require_actor = coalesce(p_require_actor, require_actor)
    RETURNING * INTO v_now;
    IF v_now IS DISTINCT FROM v_was THEN
        FOR v_table IN
            SELECT t.relid::regclass FROM {{ schema | ident }}.tables AS t
            JOIN pg_class AS c ON c.oid = t.relid
        LOOP
            PERFORM {{ schema | ident }}.refresh(v_table);
        END LOOP;
        PERFORM {{ schema | ident }}.record_system_event('configured', NULL, NULL,
            jsonb_build_object('admin_roles', to_jsonb(v_now.admin_roles), 'require_actor', v_now.require_actor));
    END IF;
END
$fn$;
