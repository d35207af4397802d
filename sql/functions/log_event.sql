{% from "fragments/macros.sql" import context_columns, context_values %}
-- log_event: record an application event, such as a login, with the actor
-- and request context of the current transaction (a longer value cut as
-- context_value says); returns its id.
--   action       login, login_failed, logout, password_changed, role_changed,
--                ... (category 'auth'; see action_category), or any other
--                name of lower-case letters, digits and underscores
--                (category 'app'). Data and system actions are refused.
--   entity_type  what the event is about, such as 'user' (optional; at
--                most 1024 characters)
--   entity_id    which one, such as '42' (optional; at most 1024 characters)
--   details      anything else, stored in `after` (optional; at most 64 kB)
-- The time, the transaction, the database user and the category are set
-- here and cannot be chosen by the caller. EXECUTE is granted to the writer
-- role only; grant that role to the application roles that log events.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.log_event(
    action      text,
    entity_type text  DEFAULT NULL,
    entity_id   text  DEFAULT NULL,
    details     jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
    v_category {{ schema | ident }}.category := {{ schema | ident }}.action_category(log_event.action);
    v_id       bigint;
BEGIN
    -- What the event is about is the caller's own argument, not context
    -- from a client: refused rather than cut, naming the argument.
    IF length(log_event.entity_type) > 1024 THEN
        RAISE EXCEPTION 'auditsql: log_event entity_type is limited to 1024 characters, got %', length(log_event.entity_type)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF length(log_event.entity_id) > 1024 THEN
        RAISE EXCEPTION 'auditsql: log_event entity_id is limited to 1024 characters, got %', length(log_event.entity_id)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF octet_length(log_event.details::text) > 65536 THEN
        RAISE EXCEPTION 'auditsql: log_event details is limited to 64 kB of JSON text, got % bytes', octet_length(log_event.details::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO {{ schema | ident }}.events
           (category, action, entity_type, entity_id, after, {{ context_columns() }})
    VALUES (v_category, log_event.action, log_event.entity_type, log_event.entity_id, log_event.details,
            {{ context_values() }})
    RETURNING id INTO v_id;
    RETURN v_id;
END
$fn$;
