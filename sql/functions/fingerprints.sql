{% from "fingerprint/catalog.sql" import catalog_objects, pinned_settings %}
-- fingerprints: every object auditsql may have made, with its digest and the
-- fingerprint its comment carries (columns: fingerprint/catalog.sql).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.fingerprints(
    p_classid regclass DEFAULT NULL,
    p_objids  oid[]    DEFAULT NULL)
RETURNS TABLE (classid regclass, objid oid, kind text, schema_name text, name text,
               table_name text, identity text, target text, owner text, implicit boolean,
               enabled text, function_schema text, security_definer boolean, config text[],
               body_digest text, digest text, description text, comment text,
               stamped_version text, stamped_digest text, stamped_source text)
LANGUAGE plpgsql
STABLE
{{- pinned_settings('function') }}
AS $fn$
#variable_conflict use_column
BEGIN
    IF p_classid IS NULL THEN
        RETURN QUERY {{ catalog_objects(schema, guard_schema) | indent(8) }};
{%- for catalog in ['pg_proc', 'pg_class', 'pg_trigger', 'pg_event_trigger'] %}
    ELSIF p_classid = 'pg_catalog.{{ catalog }}'::regclass THEN
        RETURN QUERY {{ catalog_objects(schema, guard_schema, catalog, 'p_objids') | indent(8) }};
{%- endfor %}
    END IF;
END
$fn$;
