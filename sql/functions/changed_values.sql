{% from "fragments/macros.sql" import redaction_marker %}
-- changed_values: the old values of the columns whose values differ between
-- two row images, as a jsonb object ('{}' when none), with the columns in
-- p_redact shown as the redaction marker. Values are compared in their jsonb
-- text form, so 1.0 and 1.00 differ, as they do in the row. Generated
-- capture code compares the columns it knows one by one and calls this only
-- for a row with columns it does not know (the table was altered after
-- attach).
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
