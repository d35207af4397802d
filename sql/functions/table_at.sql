-- table_at: every row of a table as the log says it was at a moment, by
-- the rule of row_at applied to every key at once.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.table_at(
    p_table regclass,
    p_at    timestamptz)
RETURNS TABLE (entity_id text, "row" jsonb)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_entity record;
BEGIN
    SELECT * INTO v_entity FROM {{ schema | ident }}.audited_entity(p_table, NULL);
    IF p_at IS NULL THEN
        RAISE EXCEPTION 'auditsql: table_at needs a time'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT s.key::text, s.image - v_entity.exclude
        FROM (SELECT DISTINCT ON (g.key) g.key, g.image
              FROM (SELECT t.*, max(t.id) OVER (PARTITION BY t.key, t.txid, t.occurred_at) AS last_id
                    FROM (SELECT e.id, e.txid, e.occurred_at, e.entity_id AS key, true AS arrives,
                                 CASE WHEN e.action IN ('created', 'updated', 'snapshot') THEN e.after END AS image
                          FROM {{ schema | ident }}.events AS e
                          WHERE e.entity_type = v_entity.entity_type AND e.occurred_at <= p_at
                            AND e.category = 'data'
                            AND e.action IN ('created', 'updated', 'deleted', 'truncated', 'snapshot')
                          UNION ALL
                          SELECT e.id, e.txid, e.occurred_at, e.previous_entity_id, false, NULL
                          FROM {{ schema | ident }}.events AS e
                          WHERE e.entity_type = v_entity.entity_type AND e.previous_entity_id IS NOT NULL
                            AND e.occurred_at <= p_at AND e.category = 'data' AND e.action = 'updated') AS t
                   ) AS g
              ORDER BY g.key, g.last_id DESC, g.arrives DESC, g.id DESC) AS s
        WHERE s.image IS NOT NULL
        ORDER BY s.key;
END
$fn$;
