-- request_events: every event of one request, oldest first
-- (events_request_id_idx).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.request_events(p_request_id text)
RETURNS SETOF {{ schema | ident }}.history
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT h.* FROM {{ schema | ident }}.history AS h
    WHERE h.request_id = p_request_id
    ORDER BY h.id
$fn$;
