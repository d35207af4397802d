-- set_actor: name who is acting in the current transaction. Sets the
-- transaction-local settings auditsql.actor_id, auditsql.actor_email and
-- auditsql.actor_role, read by every event the transaction writes; they end
-- with the transaction. NULL clears a value. Any role may call it.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.set_actor(
    actor_id text,
    email    text DEFAULT NULL,
    role     text DEFAULT NULL)
RETURNS void
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT pg_catalog.set_config('auditsql.actor_id', coalesce(actor_id, ''), true),
           pg_catalog.set_config('auditsql.actor_email', coalesce(email, ''), true),
           pg_catalog.set_config('auditsql.actor_role', coalesce(role, ''), true);
$fn$;
