-- release_hold: lift the legal hold on an entity; its events are then
-- removed by the next retention run that finds them due. Recorded as a
-- `legal_hold_released` event on the entity (by the trigger on legal_holds),
-- with the hold released and the reason for releasing it, which reaches the
-- trigger in the transaction-local setting auditsql.release_reason.
-- The entity id is read as place_hold reads it (normalize_entity_id), so
-- that the spelling that placed a hold releases it. Refused when the entity
-- is not under legal hold, so that a typo cannot pass for a release.
--   p_reason  why, for the record (optional; at most 1000 characters)
-- Runs as the owner role; the caller (session_user) must be a member of the
-- admin role.
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
