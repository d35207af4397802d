-- retention_change: what setting p_policy would mean, without setting it
-- (see retention_interval for what p_policy may be): the policy's name
-- (financial, medical, saas, or custom), the interval it keeps events for,
-- whether that is less than a year, and whether it keeps events for less
-- time than the policy in force (false when none is). set_retention refuses
-- both unless told explicitly, and decides here; a client asks here first
-- to say which, and what the next run would then remove.
-- Lengths are compared by the time they reach back from now, in UTC (see
-- retention_cutoff), as a person would judge them: '360 days' and '52
-- weeks' are less than a year, '12 months' and '366 days' are not, and
-- '365 days' is less only while the last year holds a 29 February.
-- Runs with the caller's rights; only the owner role may execute it.
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
