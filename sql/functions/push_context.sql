-- push_context: saves the context in force, then sets one as set_context
-- does. The stack is a transaction-local setting, not a table, so that
-- ROLLBACK TO SAVEPOINT undoes a push together with the context it set.
-- Saved: the six settings and the stored context (`context`, '' where none
-- is stored), which is what capture reads when set: a setting changed with
-- set_config after the last helper stays unseen after the pop, as before.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.push_context(
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
    PERFORM set_config('auditsql.context_stack',
        (jsonb_build_array(jsonb_build_object(
             'actor_id',    nullif(current_setting('auditsql.actor_id', true), ''),
             'actor_email', nullif(current_setting('auditsql.actor_email', true), ''),
             'actor_role',  nullif(current_setting('auditsql.actor_role', true), ''),
             'ip_address',  nullif(current_setting('auditsql.ip_address', true), ''),
             'user_agent',  nullif(current_setting('auditsql.user_agent', true), ''),
             'request_id',  nullif(current_setting('auditsql.request_id', true), ''),
             'context',     coalesce(current_setting('auditsql.context', true), '')))
         || coalesce(nullif(current_setting('auditsql.context_stack', true), '')::jsonb, '[]'))::text,
        true);
    PERFORM {{ schema | ident }}.set_context(push_context.actor_id, push_context.email, push_context.role,
                                             push_context.ip_address, push_context.user_agent,
                                             push_context.request_id);
END
$fn$;
