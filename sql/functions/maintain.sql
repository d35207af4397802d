-- maintain: partition maintenance, meant to run daily (auditsql retention
-- schedule / run). Returns one row per partition it created.
--   months_ahead  partitions are kept for the current UTC month and this many
--                 months after it (0 to 120, default 3)
-- First, events that landed in the default partition (because their month
-- had no partition yet) are moved into new partitions of their months:
-- each month's rows are copied into a partition created apart, deleted from
-- the default partition in the same statement, and the partition is
-- attached; a `default_rows_moved` event records partitions, ranges and row
-- counts. Then the partitions ahead are created.
--
-- Locks, in this order, so that no writer waits for more than a moment:
--   * the log: SHARE UPDATE EXCLUSIVE (one maintenance at a time; readers
--     and writers go on);
--   * only when it holds rows, the default partition: SHARE ROW EXCLUSIVE
--     while rows are moved (readers go on; writers whose events would land
--     in the default partition wait; writers to the current month, which has
--     its partition, never touch it), then ACCESS EXCLUSIVE for ATTACH, which
--     checks the default partition, for a moment.
-- Never a lock on the log stronger than SHARE UPDATE EXCLUSIVE, so a reader
-- holding the log while it waits for the default partition cannot deadlock
-- with it. lock_timeout is 2 s: if a lock cannot be had, the run fails and
-- changes nothing, and the next run tries again.
--
-- The guards stay in force for everyone: the move deletes from the default
-- partition with its two guard triggers disabled and DELETE granted to the
-- owner inside this transaction only, while it holds a lock that keeps every
-- other writer out; both are restored before it returns, so no other
-- session ever sees them lifted, and the rows deleted are exactly the rows
-- the same statement inserts into their new partition.
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
    PERFORM {{ schema | ident }}.lock_log({{ ((schema | ident) ~ '.events') | literal }}, 'SHARE UPDATE EXCLUSIVE');

    IF EXISTS (SELECT FROM {{ schema | ident }}.events_default) THEN
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
