{% from "fragments/macros.sql" import is_entity %}
-- row_at: one row as the log says it was at a moment. The state of a key is
-- set by the last event that touched it: one that brought a row to the key
-- (created, updated, snapshot: its after image; deleted, truncated: none),
-- or an update that took the row away to another key. One statement can
-- move rows onto keys others leave (SET id = id + 1 under a deferrable
-- key): the events of one statement share txid and occurred_at, and within
-- them a row arriving at a key counts after one leaving it.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.row_at(
    p_table     regclass,
    p_entity_id text,
    p_at        timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
-- Planning a custom plan over every partition and its indexes on each call
-- costs more than running the plan: the generic plan is the same index
-- scans, pruned at run time (docs/performance.md#reading-the-log).
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_entity record;
    v_image  jsonb;
BEGIN
    SELECT * INTO v_entity FROM {{ schema | ident }}.audited_entity(p_table, p_entity_id);
    IF p_entity_id IS NULL OR p_at IS NULL THEN
        RAISE EXCEPTION 'auditsql: row_at needs an entity id and a time'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.image INTO v_image
    FROM (SELECT e.id, e.txid, e.occurred_at, true AS arrives,
                 CASE WHEN e.action IN ('created', 'updated', 'snapshot') THEN e.after END AS image
          FROM {{ schema | ident }}.events AS e
          WHERE {{ is_entity('e', 'v_entity.entity_type', 'v_entity.entity_id') }}
            AND e.occurred_at <= p_at AND e.category = 'data'
            AND e.action IN ('created', 'updated', 'deleted', 'truncated', 'snapshot')
          UNION ALL
          SELECT e.id, e.txid, e.occurred_at, false, NULL
          FROM {{ schema | ident }}.events AS e
          WHERE e.entity_type = v_entity.entity_type AND e.previous_entity_id = v_entity.entity_id
            AND e.occurred_at <= p_at AND e.category = 'data' AND e.action = 'updated') AS t
    ORDER BY max(t.id) OVER (PARTITION BY t.txid, t.occurred_at) DESC, t.arrives DESC, t.id DESC
    LIMIT 1;
    -- Admin events carry excluded columns too; a row read back never does.
    RETURN v_image - v_entity.exclude;
END
$fn$;
