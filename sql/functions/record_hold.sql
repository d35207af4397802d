{% from "fragments/macros.sql" import is_entity %}
-- record_hold: trigger on legal_holds recording every hold placed or
-- released, by hand too; UPDATE and TRUNCATE would change or lose a hold
-- unrecorded. A release's reason comes in the setting auditsql.release_reason:
-- a DELETE has no way to pass it to a trigger.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.record_hold()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_count bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Counted as place_hold counts: the records of earlier holds aside.
        SELECT count(*) INTO v_count FROM {{ schema | ident }}.events AS e
        WHERE {{ is_entity('e', 'NEW.entity_type', 'NEW.entity_id') }}
          AND e.action NOT IN ('legal_hold_placed', 'legal_hold_released');
        PERFORM {{ schema | ident }}.record_system_event('legal_hold_placed', NEW.entity_type, NEW.entity_id,
            jsonb_build_object('reason', NEW.reason, 'events', v_count));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM {{ schema | ident }}.record_system_event('legal_hold_released', OLD.entity_type, OLD.entity_id,
            jsonb_build_object('reason', nullif(current_setting('auditsql.release_reason', true), ''),
                               'hold', jsonb_build_object('reason', OLD.reason, 'placed_at', OLD.placed_at,
                                                          'placed_by', OLD.placed_by)));
    ELSE
        RAISE EXCEPTION 'auditsql: legal holds are placed and released, never changed: % on %.% is not allowed',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Release the hold and place it again (auditsql retention release / hold).';
    END IF;
    RETURN NULL;
END
$fn$;
