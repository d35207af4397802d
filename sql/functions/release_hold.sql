-- release_hold: lifts a legal hold (its reason reaches record_hold in a setting).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.release_hold(
    p_entity_type text,
    p_entity_id   text,
    p_reason      text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rows bigint;
    v_id   text;
BEGIN
    -- As session_user: current_user is the owner role here.
    IF NOT pg_has_role(session_user, {{ admin | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not release legal holds: it must be a member of %', session_user, {{ admin | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF char_length(p_reason) > 1000 THEN
        RAISE EXCEPTION 'auditsql: the reason for releasing a legal hold may be at most 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_id := {{ schema | ident }}.normalize_entity_id(p_entity_type, p_entity_id);
    PERFORM set_config('auditsql.release_reason', coalesce(btrim(p_reason), ''), true);
    DELETE FROM {{ schema | ident }}.legal_holds AS h
    WHERE h.entity_type = p_entity_type AND h.entity_id = v_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows = 0 AND v_id IS DISTINCT FROM p_entity_id THEN
        -- A hold inserted by hand is stored as it was typed.
        DELETE FROM {{ schema | ident }}.legal_holds AS h
        WHERE h.entity_type = p_entity_type AND h.entity_id = p_entity_id;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
    END IF;
    PERFORM set_config('auditsql.release_reason', '', true);
    IF v_rows = 0 THEN
        RAISE EXCEPTION 'auditsql: % % is not under legal hold', coalesce(p_entity_type, 'NULL'), coalesce(v_id, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
END
$fn$;
