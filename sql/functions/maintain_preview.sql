-- maintain_preview: what maintain would create, changing nothing. Runs with
-- the caller's rights: an admin, and so a reader of the log.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.maintain_preview(months_ahead integer DEFAULT 3)
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz, rows_moved bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'auditsql: maintain_preview: months_ahead must be between 0 and 120, not %', coalesce(months_ahead::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT p.range_from AS lo, p.range_to AS hi
        FROM {{ schema | ident }}.event_partitions() AS p WHERE NOT p.is_default
    ), moved AS (
        -- Months of the default partition; maintain leaves a month where a
        -- partition it did not make overlaps it.
        SELECT d.month, count(*) AS n
        FROM (SELECT date_trunc('month', e.occurred_at AT TIME ZONE 'UTC') AS month
              FROM {{ schema | ident }}.events_default AS e) AS d
        WHERE NOT EXISTS (SELECT FROM parts
                          WHERE parts.lo < (d.month + interval '1 month') AT TIME ZONE 'UTC'
                            AND parts.hi > d.month AT TIME ZONE 'UTC')
        GROUP BY d.month
    ), ahead AS (
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g) AS month
        FROM generate_series(0, months_ahead) AS g
    ), created AS (
        SELECT moved.month, moved.n, 1 AS step FROM moved
        UNION ALL
        SELECT ahead.month, 0, 2 FROM ahead
        WHERE ahead.month NOT IN (SELECT moved.month FROM moved)
          AND NOT EXISTS (SELECT FROM parts
                          WHERE parts.lo < (ahead.month + interval '1 month') AT TIME ZONE 'UTC'
                            AND parts.hi > ahead.month AT TIME ZONE 'UTC')
    )
    SELECT 'events_' || to_char(c.month, 'YYYY_MM'), c.month AT TIME ZONE 'UTC',
           (c.month + interval '1 month') AT TIME ZONE 'UTC', c.n
    FROM created AS c
    ORDER BY c.step, c.month;
END
$fn$;
