{% from "fragments/macros.sql" import redaction_marker %}
-- changed_values: the old values of the columns that differ between two row
-- images, some redacted. Compared as text: jsonb equality calls 1.0 and 1.00
-- equal, and the row does not.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.changed_values(p_old jsonb, p_new jsonb, p_redact text[])
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce(jsonb_object_agg(o.key, CASE WHEN o.key = ANY (p_redact)
                                                 THEN to_jsonb({{ redaction_marker() }}::text)
                                                 ELSE o.value END), '{}')
    FROM jsonb_each(p_old) AS o
    WHERE (p_new -> o.key)::text IS DISTINCT FROM o.value::text
$fn$;
