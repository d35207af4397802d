-- ensure_partitions: creates the monthly partitions of the log for a span
-- of months. SECURITY DEFINER so that every partition belongs to the owner
-- role, whoever calls.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.ensure_partitions(
    p_from   timestamptz DEFAULT now(),
    p_months integer     DEFAULT 2)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_start timestamptz;
    v_end   timestamptz;
    v_name  text;
    v_rel    regclass;
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF p_months IS NULL OR p_months < 1 THEN
        RAISE EXCEPTION 'ensure_partitions: p_months must be at least 1, not %', p_months
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_from IS NULL OR NOT isfinite(p_from) THEN
        RAISE EXCEPTION 'ensure_partitions: p_from must be a finite time, not %', p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    FOR i IN 0 .. p_months - 1 LOOP
        v_start := (date_trunc('month', p_from AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        v_end   := (date_trunc('month', p_from AT TIME ZONE 'UTC') + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        v_name  := 'events_' || to_char(v_start AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN EXISTS (SELECT FROM {{ schema | ident }}.event_partitions() AS p
                              WHERE NOT p.is_default AND p.range_from < v_end AND p.range_to > v_start);
        -- ATTACH would fail while the default partition holds rows of the month.
        IF EXISTS (SELECT FROM {{ schema | ident }}.events_default
                   WHERE occurred_at >= v_start AND occurred_at < v_end) THEN
            RAISE WARNING 'auditsql: partition % not created: the default partition holds events of that month; run maintain() to move them', v_name;
            CONTINUE;
        END IF;
        v_rel := {{ schema | ident }}.create_partition(v_name, v_start, v_end);
        PERFORM {{ schema | ident }}.attach_partition(v_rel, v_start, v_end);
        RETURN NEXT v_name;
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
