{% from "fragments/macros.sql" import context_value %}
-- context_value: a context value as it is stored (fragments/macros.sql,
-- context_value), for capture, which calls it only for a long
-- application_name: a call costs the event that prepares it less than the
-- expression does.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.context_value(p_value text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN {{ context_value('p_value') }};
END
$fn$;
