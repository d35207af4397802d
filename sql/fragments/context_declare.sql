{#- Declarations of the functions that record an event themselves
    (capture_truncate, log_event, record_system_event, snapshot_rows): the
    transaction's context, read once per call as capture reads it
    (current_context), and used as read. #}
    v_context     {{ schema | ident }}.context := {{ schema | ident }}.current_context();
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_admin       boolean := coalesce((SELECT v_context.actor_role = ANY (s.admin_roles) FROM {{ schema | ident }}.settings AS s), false);
