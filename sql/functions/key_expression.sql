-- key_expression: SQL text of a row's entity_id, computed from its jsonb
-- image, for generated capture code (see capture_source).
--   p_image  the image expression, such as s.nj (trusted: from capture_source)
--   p_keys   the key columns, in key order (quoted here)
-- One key column gives its value as text; several give a JSON array of the
-- values in key order, as text, such as [42, "eu"].
CREATE OR REPLACE FUNCTION {{ schema | ident }}.key_expression(
    p_image text,
    p_keys  text[])
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN cardinality(p_keys) = 1
                THEN format('(%s OPERATOR(pg_catalog.->>) %s::pg_catalog.text)', p_image, quote_literal(p_keys[1]))
                ELSE format('pg_catalog.jsonb_build_array(%s)::pg_catalog.text',
                            (SELECT string_agg(format('%s OPERATOR(pg_catalog.->) %s::pg_catalog.text', p_image, quote_literal(k.col)),
                                               ', ' ORDER BY k.ord)
                             FROM unnest(p_keys) WITH ORDINALITY AS k(col, ord)))
           END
$fn$;
