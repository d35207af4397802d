-- attach_prepare: the audit side of attach, as the owner role; returns the
-- trigger statements the table's owner runs, none of which can weaken capture.
-- The caller is judged as session_user: current_user is the owner role here.
-- With every setting NULL it only restores what an operator decided, so the
-- operator role is not required then.
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach_prepare(regclass, text[], text, text[], text[], jsonb, boolean, boolean);
CREATE FUNCTION {{ schema | ident }}.attach_prepare(
    p_table              regclass,
    p_id_columns         text[],
    p_capture            text,
    p_exclude            text[],
    p_redact             text[],
    p_on_change          jsonb,
    p_require_actor      boolean,
    p_trust_id_columns   boolean)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rel      pg_class;
    v_name     text := p_table::text;
    v_keys     text[];
    v_source   text;
    v_col      text;
    v_was      {{ schema | ident }}.tables;
    v_now      {{ schema | ident }}.tables;
    v_policy   record;
    v_function text := format('%I.%I', {{ schema | literal }}, 'capture_' || p_table::oid);
    v_exists   boolean := to_regprocedure(format('%I.%I()', {{ schema | literal }}, 'capture_' || p_table::oid)) IS NOT NULL;
    v_changes  boolean;
    v_repair   text[];
    v_permit   text := current_setting('auditsql.permit_ddl', true);
BEGIN
    SELECT * INTO v_rel FROM pg_class WHERE oid = p_table;
    IF v_rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'auditsql: % is not a table; only ordinary and partitioned tables can be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF v_rel.relpersistence = 't' THEN
        RAISE EXCEPTION 'auditsql: % is a temporary table and cannot be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF (SELECT nspname FROM pg_namespace WHERE oid = v_rel.relnamespace)
       IN ('pg_catalog', 'information_schema', 'pg_toast', {{ schema | literal }}, {{ guard_schema | literal }}) THEN
        RAISE EXCEPTION 'auditsql: % is a system or audit table and cannot be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF v_rel.relispartition THEN
        RAISE EXCEPTION 'auditsql: % is a partition of %; attach the partitioned table instead, which covers all its partitions',
            v_name, pg_partition_root(p_table)
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role(session_user, v_rel.relowner, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach %: only its owner (%) can', session_user, v_name, v_rel.relowner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT * INTO v_was FROM {{ schema | ident }}.tables WHERE relid = p_table;
    v_changes := v_was IS NULL OR p_id_columns IS NOT NULL OR p_capture IS NOT NULL OR p_exclude IS NOT NULL
                 OR p_redact IS NOT NULL OR p_on_change IS NOT NULL OR p_require_actor IS NOT NULL
                 OR p_trust_id_columns IS NOT NULL;
    IF v_changes AND NOT pg_has_role(session_user, {{ operator | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach tables: it must be a member of %', session_user, {{ operator | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    IF coalesce(cardinality(p_id_columns), 0) > 0
       OR (p_id_columns IS NULL AND v_was.id_source = 'explicit') THEN
        v_keys := coalesce(nullif(p_id_columns, '{}'), v_was.id_columns);
        FOREACH v_col IN ARRAY v_keys LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute
                           WHERE attrelid = p_table AND attname = v_col
                             AND attnum > 0 AND NOT attisdropped) THEN
                RAISE EXCEPTION 'auditsql: table % has no column %', v_name, quote_ident(v_col)
                    USING ERRCODE = 'undefined_column';
            END IF;
        END LOOP;
        IF (SELECT count(DISTINCT c) FROM unnest(v_keys) AS c) <> cardinality(v_keys) THEN
            RAISE EXCEPTION 'auditsql: the id columns for % name a column twice', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_source := 'explicit';
    ELSE
        SELECT array_agg(a.attname::text ORDER BY k.ord) INTO v_keys
        FROM pg_index AS i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = p_table AND i.indisprimary;
        IF v_keys IS NULL THEN
            RAISE EXCEPTION 'auditsql: table % has no primary key, so its rows cannot be identified in the audit log', v_name
                USING ERRCODE = 'invalid_table_definition',
                      HINT = format('Add a primary key, or name the columns that identify a row: SELECT %I.attach(%L, ARRAY[...]) or auditsql attach %s --id-columns a,b',
                                    {{ schema | literal }}, v_name, v_name);
        END IF;
        v_source := 'primary key';
    END IF;

    v_now := ROW(p_table, v_keys, v_source,
                 coalesce(p_capture, v_was.capture, 'row'),
                 coalesce(p_exclude, v_was.exclude, '{}'), coalesce(p_redact, v_was.redact, '{}'),
                 coalesce(p_on_change, v_was.on_change, '{}'), coalesce(p_require_actor, v_was.require_actor, false),
                 coalesce(v_was.granted_select, false), coalesce(v_was.granted_usage, '{}'),
                 coalesce(v_was.attached_at, now()), coalesce(v_was.attached_by, session_user),
                 v_source = 'explicit' AND coalesce(p_trust_id_columns, v_was.id_trusted, false),
                 coalesce(v_was.triggers, '{}'), coalesce(v_was.detached_partitions, '{}'),
                 -- At the first attach, what the owner role can read before
                 -- attach grants anything (nor the event triggers, as the
                 -- capture triggers this returns are made): detach leaves it.
                 coalesce(v_was.select_kept,
                          ARRAY(SELECT c.oid FROM pg_class AS c
                                WHERE (c.oid = p_table
                                       OR c.oid IN (SELECT t.relid FROM pg_partition_tree(p_table) AS t))
                                  AND has_table_privilege({{ owner | literal }}, c.oid, 'SELECT'))));
    -- NOT NULL as well as unique: NULL keys would be logged as one entity.
    IF v_source = 'explicit' AND NOT v_now.id_trusted
       AND NOT {{ schema | ident }}.id_columns_unique(p_table, v_keys) THEN
        RAISE EXCEPTION 'auditsql: the id columns of % (%) are not backed by a unique index over NOT NULL columns, so two rows could share an entity_id',
            v_name, array_to_string(ARRAY(SELECT quote_ident(c) FROM unnest(v_keys) AS c), ', ')
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Add a unique constraint over NOT NULL columns, or attach with --trust-id-columns (SQL: p_trust_id_columns => true); auditsql verify then warns.';
    END IF;
    IF v_now.capture NOT IN ('row', 'statement') THEN
        RAISE EXCEPTION 'auditsql: unknown capture mode %; use row or statement', quote_literal(v_now.capture)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_now.capture = 'statement' AND v_rel.relkind = 'p' THEN
        RAISE EXCEPTION 'auditsql: % is partitioned and can only be captured row by row; statement triggers on it would miss writes made straight into a partition', v_name
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Attach it with capture mode row (the default).';
    END IF;
    IF jsonb_typeof(v_now.on_change) <> 'object'
       OR EXISTS (SELECT FROM jsonb_each(v_now.on_change) AS o WHERE jsonb_typeof(o.value) <> 'string') THEN
        RAISE EXCEPTION 'auditsql: on-change policies of % must be an object of column names to action names', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_policy IN
        SELECT p.policy, c.col
        FROM (VALUES ('exclude', v_now.exclude), ('redact', v_now.redact),
                     ('on-change', ARRAY(SELECT jsonb_object_keys(v_now.on_change)))) AS p(policy, cols)
        CROSS JOIN LATERAL unnest(p.cols) AS c(col)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_attribute
                       WHERE attrelid = p_table AND attname = v_policy.col
                         AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'auditsql: % policy names column %, which table % does not have', v_policy.policy, quote_ident(v_policy.col), v_name
                USING ERRCODE = 'undefined_column';
        END IF;
        IF v_policy.policy IN ('exclude', 'redact') AND v_policy.col = ANY (v_keys) THEN
            RAISE EXCEPTION 'auditsql: column % of % identifies rows (entity_id) and cannot be %', quote_ident(v_policy.col), v_name,
                CASE v_policy.policy WHEN 'exclude' THEN 'excluded' ELSE 'redacted' END
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF v_now.exclude && v_now.redact THEN
        RAISE EXCEPTION 'auditsql: a column of % cannot be both excluded and redacted', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_now.exclude && ARRAY(SELECT jsonb_object_keys(v_now.on_change)) THEN
        RAISE EXCEPTION 'auditsql: an excluded column of % cannot have an on-change action: its values are never stored', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM {{ schema | ident }}.action_category(o.value)
    FROM jsonb_each_text(v_now.on_change) AS o;

    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    -- Triggers of the other capture mode, or changed by hand, cannot stay.
    -- Dropping the function drops every trigger calling it, on the table and
    -- each partition, which the owner role may do; the table's owner then
    -- creates them again from the statements returned below.
    IF v_exists THEN
        SELECT array_agg(format('%I on %s', t.tgname, t.tgrelid::regclass) ORDER BY 1) INTO v_repair
        FROM pg_trigger AS t
        WHERE t.tgfoid = v_function::regproc AND t.tgparentid = 0
          AND NOT EXISTS (SELECT FROM {{ schema | ident }}.capture_triggers(p_table, v_now.capture) AS c
                          WHERE c.trigger_oid = t.oid AND c.found = c.definition);
        IF v_repair IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION %s() CASCADE', v_function);
            v_exists := false;
            v_now.triggers := '{}';
        END IF;
    END IF;

    INSERT INTO {{ schema | ident }}.tables SELECT v_now.*
    ON CONFLICT (relid) DO UPDATE
        SET id_columns = excluded.id_columns, id_source = excluded.id_source,
            capture = excluded.capture, exclude = excluded.exclude, redact = excluded.redact,
            on_change = excluded.on_change, require_actor = excluded.require_actor,
            id_trusted = excluded.id_trusted, triggers = excluded.triggers;

    -- The body is passed as a quoted literal, not dollar-quoted: column
    -- names appear in it, and a name may contain any dollar-quote tag.
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql '
                   'SECURITY DEFINER AS %L', v_function,
                   {{ schema | ident }}.capture_source(p_table));
    IF NOT v_exists THEN
        EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
        EXECUTE format('COMMENT ON FUNCTION %s() IS %L', v_function,
                       format('auditsql: capture for %s (generated by attach)', v_name));
    END IF;
    -- CREATE TRIGGER needs EXECUTE on the function; for a partitioned table
    -- its owner keeps it, since PostgreSQL clones the row trigger onto each
    -- partition created later (the function refuses any table outside the
    -- tree); otherwise attach_complete revokes it.
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s() TO %s', v_function, v_rel.relowner::regrole);
    PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_proc'::regclass, ARRAY[v_function::regproc::oid]);
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);

    IF v_was IS NULL OR v_repair IS NOT NULL
       OR (v_was.id_columns, v_was.capture, v_was.exclude, v_was.redact, v_was.on_change, v_was.require_actor, v_was.id_trusted)
          IS DISTINCT FROM (v_now.id_columns, v_now.capture, v_now.exclude, v_now.redact, v_now.on_change, v_now.require_actor, v_now.id_trusted) THEN
        PERFORM {{ schema | ident }}.record_system_event('attached', v_name, NULL,
            jsonb_strip_nulls(jsonb_build_object(
                'id_columns', to_jsonb(v_keys), 'id_source', v_source, 'capture', v_now.capture,
                'exclude', to_jsonb(v_now.exclude), 'redact', to_jsonb(v_now.redact),
                'on_change', v_now.on_change, 'require_actor', v_now.require_actor,
                'id_trusted', CASE WHEN v_now.id_trusted THEN true END,
                'triggers_replaced', to_jsonb(v_repair))));
    END IF;

    IF v_was IS NOT NULL AND NOT (v_now.redact <@ v_was.redact) THEN
        RAISE WARNING 'auditsql: events of % recorded before now hold % in clear; redaction applies from now on',
            v_name, array_to_string(ARRAY(SELECT quote_ident(c) FROM unnest(v_now.redact) AS c
                                          WHERE c <> ALL (v_was.redact)), ', ')
            USING HINT = format('To remove them: SELECT %I.erase(%L, NULL, %L, ''reason'') as an audit administrator, or auditsql erase %s --all --column ... --reason ...',
                                {{ schema | literal }}, v_name,
                                ARRAY(SELECT c FROM unnest(v_now.redact) AS c WHERE c <> ALL (v_was.redact))::text,
                                v_name);
    END IF;

    -- Leaves first: enabling the table's own triggers checks those of its
    -- partitions too (see ddl_guard).
    RETURN QUERY
    SELECT s.statement
    FROM {{ schema | ident }}.capture_triggers(p_table, v_now.capture) AS c
    CROSS JOIN LATERAL (VALUES
        (1, CASE WHEN c.trigger_oid IS NOT NULL AND c.found <> c.definition
                 THEN format('DROP TRIGGER %I ON %s', c.name, c.rel) END),
        (2, CASE WHEN c.trigger_oid IS NULL OR c.found <> c.definition THEN c.definition END),
        (3, CASE WHEN c.trigger_oid IS NULL OR c.found <> c.definition OR c.enabled <> 'A'
                 THEN format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', c.rel, c.name) END))
        AS s(step, statement)
    WHERE s.statement IS NOT NULL
    ORDER BY c.rel = p_table, c.rel::text, c.name, s.step;
END
$fn$;
