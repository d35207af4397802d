-- record_system_event: writes an event about auditing itself. Not SECURITY
-- DEFINER: only the owner role may write the log, and its functions call this.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.record_system_event(
    p_action      text,
    p_entity_type text,
    p_entity_id   text,
    p_details     jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
BEGIN
    INSERT INTO {{ schema | ident }}.events
           (category, action, entity_type, entity_id, after, {% from "fragments/macros.sql" import context_columns, context_values %}{{ context_columns() }})
    VALUES ('system', p_action, p_entity_type, p_entity_id, p_details, {{ context_values() }});
END
$fn$;
