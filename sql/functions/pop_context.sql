-- pop_context: restores the context the last push_context saved. Without
-- one it fails: carrying on would record writes under the wrong actor.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.pop_context()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_stack jsonb := nullif(current_setting('auditsql.context_stack', true), '')::jsonb;
    v_saved jsonb := v_stack -> 0;
BEGIN
    IF jsonb_typeof(v_saved) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'auditsql: pop_context has no saved context to restore: every pop_context needs an earlier push_context in the same transaction'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM set_config('auditsql.actor_id', coalesce(v_saved ->> 'actor_id', ''), true),
            set_config('auditsql.actor_email', coalesce(v_saved ->> 'actor_email', ''), true),
            set_config('auditsql.actor_role', coalesce(v_saved ->> 'actor_role', ''), true),
            set_config('auditsql.ip_address', coalesce(v_saved ->> 'ip_address', ''), true),
            set_config('auditsql.user_agent', coalesce(v_saved ->> 'user_agent', ''), true),
            set_config('auditsql.request_id', coalesce(v_saved ->> 'request_id', ''), true),
            set_config('auditsql.context_stack', (v_stack - 0)::text, true);
    -- Capture reads the whole context from this one setting: as it was
    -- (push_context saves it), or, from a stack that does not hold it, built
    -- from the settings.
    PERFORM set_config('auditsql.context',
                       coalesce(v_saved ->> 'context', {{ schema | ident }}.settings_context()::text), true);
END
$fn$;
