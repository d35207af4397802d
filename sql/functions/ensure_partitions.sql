-- ensure_partitions: create the monthly partitions of events covering p_from
-- and the p_months - 1 months after it, each with its own guard triggers.
-- A month whose rows already sit in the default partition is skipped with a
-- warning (creating it would fail); maintenance moves such rows out.
-- Returns the names of the partitions it created. Runs as the owner so that
-- every partition belongs to it, whoever calls; each partition and its
-- guard are stamped with their fingerprints, and auditsql.permit_ddl lets
-- the DDL past the event triggers.
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
    v_permit text := current_setting('auditsql.permit_ddl', true);
    v_created oid[] := ARRAY[]::oid[];
BEGIN
    IF p_months IS NULL OR p_months < 1 THEN
        RAISE EXCEPTION 'ensure_partitions: p_months must be at least 1, not %', p_months;
    END IF;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    FOR i IN 0 .. p_months - 1 LOOP
        v_start := (date_trunc('month', p_from AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        v_end   := (date_trunc('month', p_from AT TIME ZONE 'UTC') + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        v_name  := 'events_' || to_char(v_start AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('%I.%I', {{ schema | literal }}, v_name)) IS NOT NULL;
        IF EXISTS (SELECT FROM {{ schema | ident }}.events_default
                   WHERE occurred_at >= v_start AND occurred_at < v_end) THEN
            RAISE WARNING 'auditsql: partition % not created: the default partition holds events of that month', v_name;
            CONTINUE;
        END IF;
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.events FOR VALUES FROM (%L) TO (%L)',
                       {{ schema | literal }}, v_name, {{ schema | literal }}, v_start, v_end);
        EXECUTE format('CREATE TRIGGER auditsql_guard_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I.guard()',
                       {{ schema | literal }}, v_name, {{ schema | literal }});
        EXECUTE format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER auditsql_guard_statement',
                       {{ schema | literal }}, v_name);
        EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', {{ schema | literal }}, v_name);
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.%I FROM %I',
                       {{ schema | literal }}, v_name, {{ owner | literal }});
        v_created := v_created || format('%I.%I', {{ schema | literal }}, v_name)::regclass::oid;
        RETURN NEXT v_name;
    END LOOP;
    IF cardinality(v_created) > 0 THEN
        PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_class'::regclass, v_created);
        PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_trigger'::regclass, array_agg(g.oid))
        FROM pg_trigger AS g
        WHERE g.tgrelid = ANY (v_created) AND g.tgname = 'auditsql_guard_statement';
    END IF;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
