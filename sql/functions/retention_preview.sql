-- retention_preview: what apply_retention would return, changing nothing.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_preview(
    p_keep         interval    DEFAULT NULL,
    p_as_of        timestamptz DEFAULT now(),
    p_with_default boolean     DEFAULT false)
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz,
               rows_removed bigint, rows_kept bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_keep interval := p_keep;
BEGIN
    IF p_as_of IS NULL OR NOT isfinite(p_as_of) THEN
        RAISE EXCEPTION 'auditsql: retention_preview: p_as_of must be a finite time, not %', coalesce(p_as_of::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_keep IS NULL THEN
        SELECT r.keep INTO v_keep FROM {{ schema | ident }}.retention AS r;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'auditsql: no retention policy is set, so nothing would be removed'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Pass the interval to preview, or set a policy with auditsql retention set POLICY.';
        END IF;
    ELSIF v_keep <= interval '0' THEN
        RAISE EXCEPTION 'auditsql: retention_preview: p_keep must be longer than zero, not %', v_keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT d.partition, d.range_from, d.range_to, d.rows_removed, d.rows_kept
        FROM {{ schema | ident }}.retention_due(v_keep, p_as_of, false, coalesce(p_with_default, false)) AS d
        ORDER BY d.range_from;
END
$fn$;
