-- maintain: moves events out of the default partition into partitions of
-- their months, then creates partitions ahead.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.maintain(months_ahead integer DEFAULT 3)
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz, rows_moved bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $fn$
DECLARE
    v_month  timestamptz;
    v_start  timestamptz;
    v_end    timestamptz;
    v_name   text;
    v_rel    regclass;
    v_rows   bigint;
    v_moved  jsonb := '[]'::jsonb;
    v_new    regclass[] := '{}'::regclass[];
    v_bounds timestamptz[] := '{}'::timestamptz[];
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'auditsql: months_ahead must be between 0 and 120, not %', coalesce(months_ahead::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    -- The log first, and never more than this on it (one run at a time;
    -- readers and writers go on): a reader holding the log while it waits for
    -- the default partition cannot then deadlock with this.
    PERFORM {{ schema | ident }}.lock_log({{ ((schema | ident) ~ '.events') | literal }}, 'SHARE UPDATE EXCLUSIVE');

    IF EXISTS (SELECT FROM {{ schema | ident }}.events_default) THEN
        -- Writers whose events would land here wait; readers go on. The
        -- guards are lifted under this lock and restored before commit, when
        -- alone catalog changes show: no other session sees them lifted.
        PERFORM {{ schema | ident }}.lock_log({{ ((schema | ident) ~ '.events_default') | literal }}, 'SHARE ROW EXCLUSIVE');
        ALTER TABLE {{ schema | ident }}.events_default
            DISABLE TRIGGER auditsql_guard_statement, DISABLE TRIGGER auditsql_guard_row;
        EXECUTE format('GRANT DELETE ON %I.events_default TO %I', {{ schema | literal }}, {{ owner | literal }});
        FOR v_month IN
            SELECT DISTINCT (date_trunc('month', occurred_at AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC'
            FROM {{ schema | ident }}.events_default ORDER BY 1
        LOOP
            v_start := v_month;
            v_end   := ((v_month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
            v_name  := 'events_' || to_char(v_start AT TIME ZONE 'UTC', 'YYYY_MM');
            IF EXISTS (SELECT FROM {{ schema | ident }}.event_partitions() AS p
                       WHERE NOT p.is_default AND p.range_from < v_end AND p.range_to > v_start) THEN
                RAISE WARNING 'auditsql: events of % stay in the default partition: a partition not made by auditsql covers part of that month', v_name;
                CONTINUE;
            END IF;
            v_rel := {{ schema | ident }}.create_partition(v_name, v_start, v_end);
            EXECUTE format('WITH moved AS (DELETE FROM %I.events_default '
                           'WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
                           'INSERT INTO %s SELECT * FROM moved', {{ schema | literal }}, v_rel)
                USING v_start, v_end;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            v_new := v_new || v_rel;
            v_bounds := v_bounds || v_start || v_end;
            v_moved := v_moved || jsonb_build_object('partition', v_name, 'from', v_start, 'to', v_end, 'rows', v_rows);
            partition := v_name; range_from := v_start; range_to := v_end; rows_moved := v_rows;
            RETURN NEXT;
        END LOOP;
        EXECUTE format('REVOKE DELETE ON %I.events_default FROM %I', {{ schema | literal }}, {{ owner | literal }});
        ALTER TABLE {{ schema | ident }}.events_default
            ENABLE ALWAYS TRIGGER auditsql_guard_statement, ENABLE ALWAYS TRIGGER auditsql_guard_row;
        FOR i IN 1 .. cardinality(v_new) LOOP
            PERFORM {{ schema | ident }}.attach_partition(v_new[i], v_bounds[2 * i - 1], v_bounds[2 * i]);
        END LOOP;
        IF cardinality(v_new) > 0 THEN
            PERFORM {{ schema | ident }}.record_system_event('default_rows_moved',
                format('%I.events', {{ schema | literal }}), NULL,
                jsonb_build_object('partitions', v_moved,
                                   'rows', (SELECT sum((m ->> 'rows')::bigint) FROM jsonb_array_elements(v_moved) AS m)));
        END IF;
    END IF;

    FOR v_name IN
        SELECT * FROM {{ schema | ident }}.ensure_partitions(now(), months_ahead + 1)
    LOOP
        SELECT p.range_from, p.range_to INTO v_start, v_end
        FROM {{ schema | ident }}.event_partitions() AS p WHERE p.name = v_name;
        partition := v_name; range_from := v_start; range_to := v_end; rows_moved := 0;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
