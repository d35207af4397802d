{% from "fragments/macros.sql" import context_setting, dotted_quad %}
-- settings_context: the context the six settings auditsql.actor_id ..
-- auditsql.request_id and application_name describe, as they are stored: blanks as NULL, values
-- cut, the IP address parsed or kept as text (as inet_or_null does: it is
-- the helpers' caller's, who may not execute that). The helpers store it in
-- auditsql.context; capture reads it here only when that setting is unset.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.settings_context()
RETURNS {{ schema | ident }}.context
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_ip_raw text := {{ context_setting('auditsql.ip_address') }};
    v_ip     inet;
BEGIN
    IF v_ip_raw IS NOT NULL THEN
        -- A dotted quad needs no subtransaction to be parsed.
        IF v_ip_raw ~ {{ dotted_quad() }} THEN
            v_ip := v_ip_raw::inet;
        ELSE
            -- The same body on every server version: a script rendered for
            -- one installs unchanged on another.
            BEGIN
                v_ip := v_ip_raw::inet;
            EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
                v_ip := NULL;
            END;
        END IF;
    END IF;
    RETURN ROW({{ context_setting('auditsql.actor_id') }},
               {{ context_setting('auditsql.actor_email') }},
               {{ context_setting('auditsql.actor_role') }},
               v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
               {{ context_setting('auditsql.user_agent') }},
               {{ context_setting('auditsql.request_id') }},
               {{ context_setting('application_name') }})::{{ schema | ident }}.context;
END
$fn$;
