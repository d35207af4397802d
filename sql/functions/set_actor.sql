{% from "fragments/macros.sql" import context_value %}
-- set_actor: name who is acting in the current transaction. Sets the
-- transaction-local settings auditsql.actor_id, auditsql.actor_email and
-- auditsql.actor_role, read by every event the transaction writes; they end
-- with the transaction. NULL clears a value; a value longer than 1024
-- characters is cut, never refused (context_value). Any role may call it:
-- values are data, stored as given. set_context sets these and the request
-- in one call.
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
END
$fn$;
