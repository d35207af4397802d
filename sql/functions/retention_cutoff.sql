-- retention_cutoff: the time a policy reaches back to from a moment. In UTC,
-- so that the session's time zone and its daylight saving days cannot move
-- it. Policies are compared by it: interval ordering counts a month as 30
-- days, and would call '360 days' a year.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_cutoff(p_keep interval, p_as_of timestamptz)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT (p_as_of AT TIME ZONE 'UTC' - p_keep) AT TIME ZONE 'UTC'
$fn$;
