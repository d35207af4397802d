{% from "fragments/macros.sql" import context_value %}
-- set_request: describe the request behind the current transaction. Sets
-- the transaction-local settings auditsql.ip_address, auditsql.user_agent and
-- auditsql.request_id. An ip_address that is not a valid inet does not fail
-- here or later: events store NULL in ip_address and the text as given in
-- ip_address_raw. NULL clears a value; a value longer than 1024 characters
-- is cut, never refused (context_value). Any role may call it.
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
END
$fn$;
