{% from "fragments/macros.sql" import capture_trigger_forms %}
-- capture_triggers: the capture triggers a table needs in a capture mode,
-- beside the trigger of that name there now, if any.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_triggers(p_table regclass, p_capture text)
RETURNS TABLE (rel regclass, name text, definition text,
               trigger_oid oid, found text, enabled "char")
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT m.rel, forms.name,
           format(forms.definition, m.rel,
                  format('%I.%I', {{ schema | literal }}, 'capture_' || p_table::oid)),
           t.oid, pg_get_triggerdef(t.oid), t.tgenabled
    FROM (SELECT p_table AS rel, true AS root
          UNION ALL
          SELECT p.relid, false FROM pg_partition_tree(p_table) AS p
          WHERE p.isleaf AND p.relid <> p_table) AS m
    CROSS JOIN {{ capture_trigger_forms() }}
    LEFT JOIN pg_trigger AS t ON t.tgrelid = m.rel AND t.tgname = forms.name
    WHERE (m.root AND forms.capture IN (p_capture, 'any')) OR (NOT m.root AND forms.on_leaves)
    ORDER BY m.root DESC, m.rel::text, forms.name
$fn$;
