{#- Declarations of the functions that record an event themselves
    (capture_truncate, log_event, record_system_event): the transaction's
    context, read once per call as context_setting reads it. -#}
{%- from "fragments/macros.sql" import context_setting %}
    v_actor_id    text := {{ context_setting('auditsql.actor_id') }};
    v_actor_email text := {{ context_setting('auditsql.actor_email') }};
    v_actor_role  text := {{ context_setting('auditsql.actor_role') }};
    v_ip_raw      text := {{ context_setting('auditsql.ip_address') }};
    v_user_agent  text := {{ context_setting('auditsql.user_agent') }};
    v_request_id  text := {{ context_setting('auditsql.request_id') }};
    v_app_name    text := {{ context_setting('application_name') }};
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_ip          inet := CASE WHEN v_ip_raw IS NOT NULL THEN {{ schema | ident }}.inet_or_null(v_ip_raw) END;
    v_admin       boolean := coalesce((SELECT v_actor_role = ANY (s.admin_roles) FROM {{ schema | ident }}.settings AS s), false);
