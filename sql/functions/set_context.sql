{% from "fragments/macros.sql" import context_value %}
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
BEGIN
    PERFORM set_config('auditsql.actor_id', coalesce({{ context_value('set_context.actor_id') }}, ''), true),
            set_config('auditsql.actor_email', coalesce({{ context_value('set_context.email') }}, ''), true),
            set_config('auditsql.actor_role', coalesce({{ context_value('set_context.role') }}, ''), true),
            set_config('auditsql.ip_address', coalesce({{ context_value('set_context.ip_address') }}, ''), true),
            set_config('auditsql.user_agent', coalesce({{ context_value('set_context.user_agent') }}, ''), true),
            set_config('auditsql.request_id', coalesce({{ context_value('set_context.request_id') }}, ''), true);
    -- Capture reads the whole context from this one setting.
    PERFORM set_config('auditsql.context', {{ schema | ident }}.settings_context()::text, true);
END
$fn$;
