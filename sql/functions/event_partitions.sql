-- event_partitions: the log's partitions and their bounds. From the catalog
-- only: bounds hold no column references, so pg_get_expr opens no partition,
-- and listing never waits for maintenance or retention.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.event_partitions()
RETURNS TABLE (partition regclass, name text, range_from timestamptz, range_to timestamptz,
               is_default boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
AS $fn$
    SELECT c.oid::regclass, c.relname::text,
           CASE b.v[1] WHEN 'MINVALUE' THEN '-infinity' ELSE btrim(b.v[1], '''') END::timestamptz,
           CASE b.v[2] WHEN 'MAXVALUE' THEN 'infinity' ELSE btrim(b.v[2], '''') END::timestamptz,
           x.bound = 'DEFAULT'
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, 0) AS bound) AS x
    LEFT JOIN LATERAL (SELECT regexp_match(x.bound, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS v) AS b
        ON true
    WHERE i.inhparent = {{ ((schema | ident) ~ '.events') | literal }}::regclass
    ORDER BY 3 NULLS LAST, 2;
$fn$;
