-- retention_cutoff: the time a policy keeping events for p_keep reaches
-- back to from p_as_of: events older than it are past the policy. Computed
-- in UTC, so that the session's time zone (and its daylight saving days)
-- cannot move it. apply_retention drops the partitions that end at or
-- before it; set_retention compares policies by it, so that '360 days' is
-- shorter than '1 year' (which interval ordering, counting a month as 30
-- days, would call equal).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_cutoff(p_keep interval, p_as_of timestamptz)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT (p_as_of AT TIME ZONE 'UTC' - p_keep) AT TIME ZONE 'UTC'
$fn$;
