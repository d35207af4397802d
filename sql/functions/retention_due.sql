{% from "fragments/macros.sql" import is_entity %}
-- retention_due: the due partitions, with the events each loses and keeps.
-- The one place this is decided, so that apply_retention and
-- retention_preview cannot disagree. With p_lock each partition is locked
-- before it is counted, so that apply_retention's counts hold until it
-- drops; its caller holds legal_holds first.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_due(
    p_keep         interval,
    p_as_of        timestamptz,
    p_lock         boolean,
    p_with_default boolean)
RETURNS TABLE (rel regclass, partition text, range_from timestamptz, range_to timestamptz,
               rows_removed bigint, rows_kept bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cutoff timestamptz := {{ schema | ident }}.retention_cutoff(p_keep, p_as_of);
    v_part   record;
    v_total  bigint;
    v_kept   bigint;
BEGIN
    FOR v_part IN
        SELECT p.partition AS rel, p.name, p.range_from AS lo, p.range_to AS hi
        FROM {{ schema | ident }}.event_partitions() AS p
        WHERE NOT p.is_default AND p.range_to <= v_cutoff
        UNION ALL
        -- Months of the default partition, as maintain() names and bounds
        -- them (it leaves a month where another partition overlaps it).
        SELECT NULL::regclass, 'events_' || to_char(m.month, 'YYYY_MM'),
               m.month AT TIME ZONE 'UTC', (m.month + interval '1 month') AT TIME ZONE 'UTC'
        FROM (SELECT DISTINCT date_trunc('month', d.occurred_at AT TIME ZONE 'UTC') AS month
              FROM {{ schema | ident }}.events_default AS d
              WHERE p_with_default) AS m
        WHERE (m.month + interval '1 month') AT TIME ZONE 'UTC' <= v_cutoff
          AND NOT EXISTS (SELECT FROM {{ schema | ident }}.event_partitions() AS q
                          WHERE NOT q.is_default
                            AND q.range_from < (m.month + interval '1 month') AT TIME ZONE 'UTC'
                            AND q.range_to > m.month AT TIME ZONE 'UTC')
        ORDER BY 3
    LOOP
        IF p_lock AND v_part.rel IS NOT NULL THEN
            PERFORM {{ schema | ident }}.lock_log(v_part.rel, 'SHARE');
        END IF;
        -- Through the log, restricted to the range: pruning leaves exactly
        -- this partition (or the default one), and rows come typed as the
        -- log's.
        SELECT count(*) INTO v_total FROM {{ schema | ident }}.events AS e
        WHERE e.occurred_at >= v_part.lo AND e.occurred_at < v_part.hi;
        SELECT count(*) INTO v_kept
        FROM {{ schema | ident }}.legal_holds AS l
        CROSS JOIN LATERAL (
            SELECT FROM {{ schema | ident }}.events AS e
            WHERE {{ is_entity('e', 'l.entity_type', 'l.entity_id') }}
              AND e.occurred_at >= v_part.lo AND e.occurred_at < v_part.hi) AS h;
        CONTINUE WHEN v_total > 0 AND v_kept = v_total;
        rel := v_part.rel; partition := v_part.name; range_from := v_part.lo; range_to := v_part.hi;
        rows_removed := v_total - v_kept; rows_kept := v_kept;
        RETURN NEXT;
    END LOOP;
END
$fn$;
