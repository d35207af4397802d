-- set_actor: name who is acting in the current transaction. Sets the
-- transaction-local settings auditsql.actor_id, auditsql.actor_email and
-- auditsql.actor_role, read by every event the transaction writes; they end
-- with the transaction. NULL clears a value; a value longer than 1024
-- characters is refused. Any role may call it: values are data, stored as
-- given.
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
    IF length(actor_id) > 1024 OR length(email) > 1024 OR length(role) > 1024 THEN
        RAISE EXCEPTION 'auditsql: actor values are limited to 1024 characters'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    PERFORM set_config('auditsql.actor_id', coalesce(actor_id, ''), true),
            set_config('auditsql.actor_email', coalesce(email, ''), true),
            set_config('auditsql.actor_role', coalesce(role, ''), true);
END
$fn$;
