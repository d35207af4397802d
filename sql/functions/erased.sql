-- erased: a row image with some keys' values replaced by a marker, for erase.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.erased(
    p_image   jsonb,
    p_columns text[],
    p_keys    text[],
    p_marker  jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN jsonb_typeof(p_image) = 'object' THEN
        (SELECT coalesce(jsonb_object_agg(i.key,
                    CASE WHEN (p_columns IS NULL AND i.key <> ALL (p_keys)) OR i.key = ANY (p_columns)
                         THEN p_marker ELSE i.value END), '{}')
         FROM jsonb_each(p_image) AS i)
    ELSE p_image END
$fn$;
