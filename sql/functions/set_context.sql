{% from "fragments/macros.sql" import context_value, dotted_quad %}
-- set_context: sets the whole actor and request context in one statement.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.set_context(
    actor_id   text DEFAULT NULL,
    email      text DEFAULT NULL,
    role       text DEFAULT NULL,
    ip_address text DEFAULT NULL,
    user_agent text DEFAULT NULL,
    request_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_app text := current_setting('application_name');
    v_ip  inet;
BEGIN
    -- It runs once per transaction, so what it prepares counts: with every
    -- value short, nothing is cut and the context is stored from the
    -- arguments, with a fraction of the expressions of the general case.
    IF octet_length(concat(set_context.actor_id, set_context.email, set_context.role, set_context.ip_address, set_context.user_agent, set_context.request_id, v_app)) <= 1024
       AND (set_context.ip_address IS NULL
            OR set_context.ip_address ~ {{ dotted_quad() }}) THEN
        v_ip := nullif(set_context.ip_address, '')::inet;
        PERFORM set_config('auditsql.actor_id', coalesce(set_context.actor_id, ''), true),
                set_config('auditsql.actor_email', coalesce(set_context.email, ''), true),
                set_config('auditsql.actor_role', coalesce(set_context.role, ''), true),
                set_config('auditsql.ip_address', coalesce(set_context.ip_address, ''), true),
                set_config('auditsql.user_agent', coalesce(set_context.user_agent, ''), true),
                set_config('auditsql.request_id', coalesce(set_context.request_id, ''), true),
                -- Capture reads the whole context from this one setting.
                set_config('auditsql.context',
                           ROW(nullif(set_context.actor_id, ''), nullif(set_context.email, ''), nullif(set_context.role, ''), v_ip, NULL,
                               nullif(set_context.user_agent, ''), nullif(set_context.request_id, ''),
                               nullif(v_app, ''))::{{ schema | ident }}.context::text, true);
        RETURN;
    END IF;
    PERFORM set_config('auditsql.actor_id', coalesce({{ context_value('set_context.actor_id') }}, ''), true),
            set_config('auditsql.actor_email', coalesce({{ context_value('set_context.email') }}, ''), true),
            set_config('auditsql.actor_role', coalesce({{ context_value('set_context.role') }}, ''), true),
            set_config('auditsql.ip_address', coalesce({{ context_value('set_context.ip_address') }}, ''), true),
            set_config('auditsql.user_agent', coalesce({{ context_value('set_context.user_agent') }}, ''), true),
            set_config('auditsql.request_id', coalesce({{ context_value('set_context.request_id') }}, ''), true);
    PERFORM set_config('auditsql.context', {{ schema | ident }}.settings_context()::text, true);
END
$fn$;
