{% from "fragments/macros.sql" import is_entity %}
-- entity_history: every event of one row, oldest first, under each key it
-- has had. Key changes are followed both ways, one step per loop, each an
-- index probe (events_entity_idx backwards, events_previous_entity_id_idx
-- forwards).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.entity_history(
    p_table     regclass,
    p_entity_id text)
RETURNS SETOF {{ schema | ident }}.history
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
    v_ids    text[];
    v_new    text[];
BEGIN
    SELECT * INTO v_entity FROM {{ schema | ident }}.audited_entity(p_table, p_entity_id);
    IF p_entity_id IS NULL THEN
        RAISE EXCEPTION 'auditsql: an entity id is required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_ids := ARRAY[v_entity.entity_id];
    v_new := v_ids;
    LOOP
        SELECT array_agg(DISTINCT k.id) INTO v_new
        FROM (SELECT e.previous_entity_id AS id FROM {{ schema | ident }}.events AS e
              WHERE {{ is_entity('e', 'v_entity.entity_type', 'ANY (v_new)') }}
                AND e.previous_entity_id IS NOT NULL
              UNION ALL
              SELECT e.entity_id FROM {{ schema | ident }}.events AS e
              WHERE e.entity_type = v_entity.entity_type AND e.previous_entity_id = ANY (v_new)) AS k
        WHERE k.id <> ALL (v_ids);
        EXIT WHEN v_new IS NULL;
        v_ids := v_ids || v_new;
    END LOOP;
    RETURN QUERY
        SELECT h.* FROM {{ schema | ident }}.history AS h
        WHERE {{ is_entity('h', 'v_entity.entity_type', 'ANY (v_ids)') }}
        ORDER BY h.id;
END
$fn$;
