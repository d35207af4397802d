-- refresh: brings a table's capture up to date and records what happened to
-- its capture triggers outside auditsql. Executable by anyone (the event
-- triggers call it as whoever ran the DDL): it changes no setting, and
-- records what the catalog says, never what the caller says.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.refresh(p_table regclass)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was      {{ schema | ident }}.tables;
    v_function regprocedure := to_regprocedure(format('%I.%I()', {{ schema | literal }}, 'capture_' || p_table::oid));
    v_now      jsonb;
    v_member   record;
    v_detached oid[];
    v_permit   text := current_setting('auditsql.permit_ddl', true);
BEGIN
    SELECT * INTO v_was FROM {{ schema | ident }}.tables WHERE relid = p_table FOR UPDATE;
    IF NOT FOUND OR v_function IS NULL OR NOT EXISTS (SELECT FROM pg_class WHERE oid = p_table) THEN
        RETURN;
    END IF;

    IF (SELECT prosrc FROM pg_proc WHERE oid = v_function)
       IS DISTINCT FROM {{ schema | ident }}.capture_source(p_table) THEN
        PERFORM set_config('auditsql.permit_ddl', 'on', true);
        EXECUTE format('CREATE OR REPLACE FUNCTION %s RETURNS trigger LANGUAGE plpgsql '
                       'SECURITY DEFINER AS %L', v_function,
                       {{ schema | ident }}.capture_source(p_table));
        PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_proc'::regclass, ARRAY[v_function::oid]);
        PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
    END IF;

    SELECT coalesce(jsonb_object_agg(t.oid::text, jsonb_build_object(
               'table', t.tgrelid::oid, 'name', t.tgrelid::regclass::text)), '{}')
      INTO v_now
    FROM pg_trigger AS t
    WHERE t.tgfoid = v_function
      AND t.tgrelid IN (SELECT p_table UNION ALL SELECT r.relid FROM pg_partition_tree(p_table) AS r);
    IF v_now = v_was.triggers THEN
        RETURN;
    END IF;

    v_detached := v_was.detached_partitions;
    FOR v_member IN
        WITH was AS (SELECT (w.value ->> 'table')::oid AS rel, w.value ->> 'name' AS name, w.key AS trigger
                     FROM jsonb_each(v_was.triggers) AS w),
             now AS (SELECT (n.value ->> 'table')::oid AS rel, n.value ->> 'name' AS name, n.key AS trigger
                     FROM jsonb_each(v_now) AS n)
        SELECT coalesce(w.rel, n.rel) AS rel,
               coalesce(max(n.name), max(w.name)) AS name,
               count(w.trigger) > 0 AS recorded, count(n.trigger) > 0 AS present,
               count(w.trigger) FILTER (WHERE n.trigger IS NULL) > 0 AS lost
        FROM was AS w FULL JOIN now AS n ON n.trigger = w.trigger
        GROUP BY coalesce(w.rel, n.rel)
        ORDER BY 2
    LOOP
        -- Triggers added to a member weaken nothing: only a recorded one
        -- gone, or a member new to the tree after a detach, is news.
        IF v_was.triggers = '{}' OR NOT (v_member.lost OR NOT v_member.recorded) THEN
            CONTINUE;
        ELSIF v_member.recorded AND NOT v_member.present THEN
            IF NOT EXISTS (SELECT FROM pg_class WHERE oid = v_member.rel) THEN
                PERFORM {{ schema | ident }}.record_system_event('partition_dropped', p_table::text, NULL,
                    jsonb_build_object('partition', v_member.name));
            ELSIF v_member.rel <> p_table
                  AND NOT EXISTS (SELECT FROM pg_partition_tree(p_table) AS r WHERE r.relid = v_member.rel) THEN
                PERFORM {{ schema | ident }}.record_system_event('partition_detached', p_table::text, NULL,
                    jsonb_build_object('partition', v_member.rel::regclass::text));
                v_detached := array_append(array_remove(v_detached, v_member.rel), v_member.rel);
            ELSE
                PERFORM {{ schema | ident }}.record_system_event('capture_triggers_replaced', p_table::text, NULL,
                    jsonb_build_object('table', v_member.name, 'triggers', 'dropped'));
            END IF;
        ELSIF NOT v_member.recorded THEN
            IF v_member.rel = ANY (v_detached) THEN
                PERFORM {{ schema | ident }}.record_system_event('partition_reattached', p_table::text, NULL,
                    jsonb_build_object('partition', v_member.name));
                v_detached := array_remove(v_detached, v_member.rel);
            END IF;
        ELSE
            PERFORM {{ schema | ident }}.record_system_event('capture_triggers_replaced', p_table::text, NULL,
                jsonb_build_object('table', v_member.name, 'triggers', 'dropped and created again'));
        END IF;
    END LOOP;
    UPDATE {{ schema | ident }}.tables
       SET triggers = v_now, detached_partitions = v_detached
     WHERE relid = p_table;
END
$fn$;
