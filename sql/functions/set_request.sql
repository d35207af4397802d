{% from "fragments/macros.sql" import context_value %}
-- set_request: describes the request behind the current transaction.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.set_request(
    ip_address text,
    user_agent text DEFAULT NULL,
    request_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM set_config('auditsql.ip_address', coalesce({{ context_value('set_request.ip_address') }}, ''), true),
            set_config('auditsql.user_agent', coalesce({{ context_value('set_request.user_agent') }}, ''), true),
            set_config('auditsql.request_id', coalesce({{ context_value('set_request.request_id') }}, ''), true);
    -- Capture reads the whole context from this one setting.
    PERFORM set_config('auditsql.context', {{ schema | ident }}.settings_context()::text, true);
END
$fn$;
