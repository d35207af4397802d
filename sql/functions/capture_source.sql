-- capture_source: the body of a table's capture function, capture_<table
-- oid> in the audit schema (template: sql/templates/capture.sql, whose
-- placeholders are format()'s arguments 1-5 below, in that order). attach
-- creates the function from it; status compares it with the installed body
-- to tell whether the function is current (it is not after ALTER TABLE).
--   p_table    the audited table (for a partitioned table, the root)
--   p_keys     the columns that identify a row, in key order
--   p_capture  'row' or 'statement' (see attach)
-- Every piece taken from the catalog or the arguments is quoted here, by
-- format('%I') or quote_literal(); the template itself is fixed at install.
-- The column list is the table's as it is now: the function compares those
-- columns one by one, and falls back to a generic comparison for a row that
-- has columns it does not know (added or renamed since attach).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_source(
    p_table   regclass,
    p_keys    text[],
    p_capture text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_kind        "char";
    v_columns     text[];
    v_entity_type text;
    v_diff        text;
BEGIN
    SELECT c.relkind INTO v_kind FROM pg_class AS c WHERE c.oid = p_table;
    SELECT array_agg(a.attname::text ORDER BY a.attnum),
           string_agg(format(
               CASE WHEN coalesce(nullif(t.typbasetype, 0), a.atttypid)
                         = ANY ('{16,17,18,19,20,21,23,25,26,650,829,869,1042,1043,1082,1083,1114,1184,1186,1266,2950}'::oid[])
                    -- booleans, integers and types that become JSON strings:
                    -- jsonb equality is exact for their values
                    THEN 'CASE WHEN (s.oj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text) OPERATOR(pg_catalog.=) (s.nj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text) THEN %1$s END'
                    -- other numbers compare by value as jsonb (1.0 = 1.00, -0 = 0),
                    -- and so may values nested in arrays, json or rows: compare text
                    ELSE 'CASE WHEN (s.oj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (s.nj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text THEN %1$s END'
               END,
               quote_literal(a.attname)), E',\n                             ' ORDER BY a.attnum)
      INTO v_columns, v_diff
    FROM pg_attribute AS a
    JOIN pg_type AS t ON t.oid = a.atttypid
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;

    IF v_kind = 'p' THEN
        -- Row triggers fire on the partition that holds the row; events name
        -- the root, looked up by oid so that a rename is followed.
        v_entity_type := format(
            '(SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) ''.'' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)'
            ' FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace'
            ' WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid)', p_table::oid);
    ELSE
        v_entity_type := 'pg_catalog.quote_ident(TG_TABLE_SCHEMA) OPERATOR(pg_catalog.||) ''.'' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(TG_TABLE_NAME)';
    END IF;

    RETURN format(
        CASE p_capture
        WHEN 'row' THEN
            $tpl${% with mode = 'row' %}{% include "templates/capture.sql" %}{% endwith %}$tpl$
        WHEN 'statement' THEN
            $tpl${% with mode = 'statement' %}{% include "templates/capture.sql" %}{% endwith %}$tpl$
        END,
        v_entity_type,
        {{ schema | ident }}.key_expression('s.nj', p_keys),
        {{ schema | ident }}.key_expression('s.oj', p_keys),
        quote_literal(v_columns),
        format(E's.oj OPERATOR(pg_catalog.-) pg_catalog.array_remove(ARRAY[%s]::pg_catalog.text[], NULL::pg_catalog.text)', v_diff));
END
$fn$;
