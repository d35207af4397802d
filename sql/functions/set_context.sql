{% from "fragments/macros.sql" import context_value %}
-- set_context: the whole actor and request context of the current
-- transaction in one call, what set_actor and set_request set between
-- them: one statement where they take two. Every argument sets its setting
-- and NULL clears it, so a call replaces the whole context. A value longer
-- than 1024 characters is cut, never refused (context_value). Any role may
-- call it.
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
END
$fn$;
