{% from "fragments/macros.sql" import is_entity %}
-- apply_retention: removes the partitions the retention policy no longer
-- keeps, rebuilding those that hold events under legal hold. Events leave
-- only with a whole table, never by DELETE, so the guards stay in force.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.apply_retention(as_of timestamptz DEFAULT now())
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz,
               rows_removed bigint, rows_kept bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
SET lock_timeout = '2s'
AS $fn$
DECLARE
    v_policy {{ schema | ident }}.retention;
    v_cutoff timestamptz;
    v_part   record;
    v_parts  jsonb;
    v_held   {{ schema | ident }}.events[];
    v_rel    regclass;
    v_done   jsonb := '[]'::jsonb;
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF as_of IS NULL OR as_of > clock_timestamp() THEN
        RAISE EXCEPTION 'auditsql: apply_retention: as_of must not be in the future (got %)', coalesce(as_of::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_policy FROM {{ schema | ident }}.retention;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'auditsql: no retention policy is set, so nothing can be removed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set one with auditsql retention set POLICY (financial, medical, saas or an interval).';
    END IF;
    v_cutoff := {{ schema | ident }}.retention_cutoff(v_policy.keep, as_of);
    IF NOT EXISTS (SELECT FROM {{ schema | ident }}.event_partitions() AS p
                   WHERE NOT p.is_default AND p.range_to <= v_cutoff) THEN
        RETURN;
    END IF;

    -- Holds cannot change until this transaction ends.
    LOCK TABLE {{ schema | ident }}.legal_holds IN SHARE MODE;
    -- Count first, each due partition locked against writes but not the
    -- log, so that counting a large month blocks no writer.
    SELECT coalesce(jsonb_agg(jsonb_build_object('rel', d.rel::oid, 'partition', d.partition,
                                                 'from', d.range_from, 'to', d.range_to,
                                                 'rows_removed', d.rows_removed, 'rows_kept', d.rows_kept)
                              ORDER BY d.range_from), '[]'::jsonb)
      INTO v_parts
    FROM {{ schema | ident }}.retention_due(v_policy.keep, as_of, true, false) AS d;
    IF jsonb_array_length(v_parts) = 0 THEN
        RETURN;
    END IF;

    -- Dropping a partition needs ACCESS EXCLUSIVE on the log: taken only now.
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM {{ schema | ident }}.lock_log({{ ((schema | ident) ~ '.events') | literal }}, 'ACCESS EXCLUSIVE');
    FOR v_part IN
        SELECT (d ->> 'rel')::oid::regclass AS rel, d ->> 'partition' AS name,
               (d ->> 'from')::timestamptz AS lo, (d ->> 'to')::timestamptz AS hi,
               (d ->> 'rows_removed')::bigint AS removed, (d ->> 'rows_kept')::bigint AS kept
        FROM jsonb_array_elements(v_parts) AS d
    LOOP
        IF v_part.kept > 0 THEN
            SELECT array_agg(h.e ORDER BY (h.e).id) INTO v_held
            FROM {{ schema | ident }}.legal_holds AS l
            CROSS JOIN LATERAL (
                SELECT e FROM {{ schema | ident }}.events AS e
                WHERE {{ is_entity('e', 'l.entity_type', 'l.entity_id') }}
                  AND e.occurred_at >= v_part.lo AND e.occurred_at < v_part.hi) AS h;
        END IF;
        EXECUTE format('DROP TABLE %s', v_part.rel);
        -- Sealed events of this range are gone by policy: verification
        -- tells them from deletions by this row.
        INSERT INTO {{ schema | ident }}.seal_retired
            (partition, range_from, range_to, rows_removed, rows_kept, last_block, last_hash)
        SELECT v_part.name, v_part.lo, v_part.hi, v_part.removed, v_part.kept, h.block, h.hash
        FROM {{ schema | ident }}.seal_head AS h;
        IF v_part.kept > 0 THEN
            v_rel := {{ schema | ident }}.create_partition(v_part.name, v_part.lo, v_part.hi);
            EXECUTE format('INSERT INTO %s SELECT * FROM unnest($1)', v_rel) USING v_held;
            PERFORM {{ schema | ident }}.attach_partition(v_rel, v_part.lo, v_part.hi);
        END IF;
        partition := v_part.name; range_from := v_part.lo; range_to := v_part.hi;
        rows_removed := v_part.removed; rows_kept := v_part.kept;
        v_done := v_done || jsonb_build_object('partition', v_part.name, 'from', v_part.lo, 'to', v_part.hi,
                                               'rows_removed', v_part.removed, 'rows_kept', v_part.kept);
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);

    PERFORM {{ schema | ident }}.record_system_event('retention_applied',
        format('%I.events', {{ schema | literal }}), NULL,
        jsonb_build_object(
            'policy', v_policy.policy, 'keep', v_policy.keep::text,
            'as_of', as_of, 'cutoff', v_cutoff, 'partitions', v_done,
            'rows_removed', (SELECT sum((d ->> 'rows_removed')::bigint) FROM jsonb_array_elements(v_done) AS d),
            'rows_kept', (SELECT sum((d ->> 'rows_kept')::bigint) FROM jsonb_array_elements(v_done) AS d)));
END
$fn$;
