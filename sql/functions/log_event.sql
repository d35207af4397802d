{% from "fragments/macros.sql" import context_columns, context_values %}
-- log_event: records an application event with the transaction's context.
-- SECURITY DEFINER: its callers, the writer role, hold no right on the log.
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
