-- erased: a row image (or event details) with the values of some keys
-- replaced by a marker, for erase: those named in p_columns, or, when
-- p_columns is NULL, every key but p_keys. NULL stays NULL; an image with
-- nothing to erase comes back as it was.
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
