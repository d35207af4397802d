-- key_expression: SQL text of a row's entity_id from its image, for
-- generated code. p_image is trusted SQL from capture_source; the key
-- columns are quoted here.
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
