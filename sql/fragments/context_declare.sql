{#- Declarations shared by the capture functions: the actor and request
    context of the current transaction, read once per trigger call. Values
    come from transaction-local settings (see set_actor / set_request); an
    unset or empty setting is NULL, never a made-up value, and a value is
    cut at 1024 characters (set_actor and set_request refuse longer ones;
    set_config does not). v_admin: the actor role is an admin role. #}
    v_actor_id    text := left(nullif(current_setting('auditsql.actor_id', true), ''), 1024);
    v_actor_email text := left(nullif(current_setting('auditsql.actor_email', true), ''), 1024);
    v_actor_role  text := left(nullif(current_setting('auditsql.actor_role', true), ''), 1024);
    v_ip_raw      text := left(nullif(current_setting('auditsql.ip_address', true), ''), 1024);
    v_user_agent  text := left(nullif(current_setting('auditsql.user_agent', true), ''), 1024);
    v_request_id  text := left(nullif(current_setting('auditsql.request_id', true), ''), 1024);
    v_app_name    text := left(nullif(current_setting('application_name'), ''), 1024);
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_ip          inet := CASE WHEN v_ip_raw IS NOT NULL THEN {{ schema | ident }}.inet_or_null(v_ip_raw) END;
    v_admin       boolean := coalesce((SELECT v_actor_role = ANY (s.admin_roles) FROM {{ schema | ident }}.settings AS s), false);
