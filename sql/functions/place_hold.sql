{% from "fragments/macros.sql" import is_entity %}
-- place_hold: puts an entity under legal hold, so that retention keeps its
-- events.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.place_hold(
    p_entity_type text,
    p_entity_id   text,
    p_reason      text,
    p_future      boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_id text;
BEGIN
    -- As session_user: current_user is the owner role here.
    IF NOT pg_has_role(session_user, {{ admin | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not place legal holds: it must be a member of %', session_user, {{ admin | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_entity_id IS NULL OR p_entity_id = '' THEN
        RAISE EXCEPTION 'auditsql: a legal hold needs an entity id'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' OR char_length(p_reason) > 1000 THEN
        RAISE EXCEPTION 'auditsql: a legal hold needs a reason of 1 to 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_entity_type IS NULL
       OR NOT (EXISTS (SELECT FROM {{ schema | ident }}.tables AS t
                       JOIN pg_class AS c ON c.oid = t.relid
                       JOIN pg_namespace AS n ON n.oid = c.relnamespace
                       WHERE format('%I.%I', n.nspname, c.relname) = p_entity_type)
               OR EXISTS (SELECT FROM {{ schema | ident }}.events AS e
                          WHERE e.entity_type = p_entity_type)) THEN
        RAISE EXCEPTION 'auditsql: no audited table and no event in the log has entity type %', coalesce(quote_literal(p_entity_type), 'NULL')
            USING ERRCODE = 'undefined_table',
                  HINT = 'Entity types are schema-qualified table names as in events.entity_type, such as public.orders.';
    END IF;
    v_id := {{ schema | ident }}.normalize_entity_id(p_entity_type, p_entity_id);
    IF EXISTS (SELECT FROM {{ schema | ident }}.legal_holds AS h
               WHERE h.entity_type = p_entity_type AND h.entity_id = v_id) THEN
        RETURN false;
    END IF;
    -- The records of earlier holds are not events the hold would hold.
    IF NOT coalesce(p_future, false)
       AND NOT EXISTS (SELECT FROM {{ schema | ident }}.events AS e
                       WHERE {{ is_entity('e', 'p_entity_type', 'v_id') }}
                         AND e.action NOT IN ('legal_hold_placed', 'legal_hold_released')) THEN
        RAISE EXCEPTION 'auditsql: no event in the log has entity type % and entity id %, so the hold would hold nothing; pass p_future => true to hold its future events',
            p_entity_type, quote_literal(v_id)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Entity ids are spelled as in events.entity_id: 1001, or [7, "b"] for a composite key (auditsql retention hold --future holds future events).';
    END IF;
    INSERT INTO {{ schema | ident }}.legal_holds (entity_type, entity_id, reason)
    VALUES (p_entity_type, v_id, p_reason)
    ON CONFLICT (entity_type, entity_id) DO NOTHING;
    RETURN FOUND;
END
$fn$;
