-- actor_events: what one actor did from p_from up to p_to, oldest first,
-- at most p_limit events (events_actor_idx). The limit keeps an answer
-- about a busy service account bounded; page on with p_from.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.actor_events(
    p_actor_id text,
    p_from     timestamptz,
    p_to       timestamptz DEFAULT NULL,
    p_limit    integer     DEFAULT 1000)
RETURNS SETOF {{ schema | ident }}.history
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF p_actor_id IS NULL OR p_from IS NULL THEN
        RAISE EXCEPTION 'auditsql: actor_events needs an actor id and a start time'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'auditsql: invalid limit %: give a positive number of events', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT h.* FROM {{ schema | ident }}.history AS h
        WHERE h.actor_id = p_actor_id AND h.occurred_at >= p_from
          AND h.occurred_at < coalesce(p_to, 'infinity')
        ORDER BY h.occurred_at, h.id
        LIMIT p_limit;
END
$fn$;
