-- retention_change: what setting a policy would mean, without setting it;
-- set_retention decides by it, so that a client can ask first.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_change(p_policy text)
RETURNS TABLE (policy text, keep interval, under_a_year boolean, shortens boolean)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cutoff timestamptz;
BEGIN
    keep := {{ schema | ident }}.retention_interval(p_policy);
    policy := CASE WHEN lower(btrim(p_policy)) IN ('financial', 'medical', 'saas')
                   THEN lower(btrim(p_policy)) ELSE 'custom' END;
    v_cutoff := {{ schema | ident }}.retention_cutoff(keep, now());
    under_a_year := v_cutoff > {{ schema | ident }}.retention_cutoff(interval '1 year', now());
    shortens := coalesce((SELECT v_cutoff > {{ schema | ident }}.retention_cutoff(r.keep, now())
                          FROM {{ schema | ident }}.retention AS r), false);
    RETURN NEXT;
END
$fn$;
