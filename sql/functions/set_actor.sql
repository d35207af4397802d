{% from "fragments/macros.sql" import context_value %}
-- set_actor: names who acts in the current transaction.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.set_actor(
    actor_id text,
    email    text DEFAULT NULL,
    role     text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM set_config('auditsql.actor_id', coalesce({{ context_value('set_actor.actor_id') }}, ''), true),
            set_config('auditsql.actor_email', coalesce({{ context_value('set_actor.email') }}, ''), true),
            set_config('auditsql.actor_role', coalesce({{ context_value('set_actor.role') }}, ''), true);
    -- Capture reads the whole context from this one setting.
    PERFORM set_config('auditsql.context', {{ schema | ident }}.settings_context()::text, true);
END
$fn$;
