{#- Declarations of the functions that record an event themselves
    (capture_truncate, log_event, record_system_event): the transaction's
    context, read once per call as capture reads it (current_context). #}
    v_context     {{ schema | ident }}.context := {{ schema | ident }}.current_context();
    v_actor_id    text := v_context.actor_id;
    v_actor_email text := v_context.actor_email;
    v_actor_role  text := v_context.actor_role;
    v_ip_raw      text := v_context.ip_address_raw;
    v_user_agent  text := v_context.user_agent;
    v_request_id  text := v_context.request_id;
    v_app_name    text := v_context.application_name;
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_ip          inet := v_context.ip_address;
    v_admin       boolean := coalesce((SELECT v_actor_role = ANY (s.admin_roles) FROM {{ schema | ident }}.settings AS s), false);
