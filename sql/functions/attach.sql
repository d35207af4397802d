-- attach: start auditing a table. Idempotent: attaching again regenerates
-- the capture function and the triggers, and updates the key columns and the
-- capture mode.
--   p_table       the table; a regclass, so PostgreSQL resolves and checks the name
--   p_id_columns  columns that identify a row, for a table without a primary
--                 key (or to override it); NULL means the primary key
--   p_capture     'row' or 'statement'; NULL keeps the table's current mode
--                 ('row' for a table not attached yet)
--   p_exclude     columns never stored; an update that changes nothing else
--                 records nothing
--   p_redact      columns stored as the marker '[redacted]' in before and
--                 after; a change still shows in changed_columns
--   p_on_change   {"column": "action"}: an update that changes the column
--                 also records an auth event with that action, carrying the
--                 column's before and after and the data event's id (caused_by)
--   p_strict      require an actor: a write without one in context fails
-- For each policy NULL keeps what the table has ('{}' or false for a table
-- not attached yet); an empty value clears it. Key columns can be neither
-- excluded nor redacted, and an excluded column cannot have an on-change
-- action. Events of an admin actor (see configure) ignore exclusions.
-- Each table gets its own capture function, capture_<table oid> in the audit
-- schema, generated from its columns and key (see capture_source). In 'row' mode it
-- runs as an AFTER ... FOR EACH ROW trigger: the cheapest for the one-row
-- statements of OLTP, and the only mode for partitioned tables (PostgreSQL
-- clones the trigger onto every partition, present and future). In
-- 'statement' mode it runs as three statement-level AFTER triggers over
-- transition tables: one INSERT per statement, the cheapest for bulk writes.
-- Every table, and each leaf partition, also gets a BEFORE TRUNCATE trigger
-- (partitions created later are covered by the one on the table when it is
-- truncated; run attach again to cover a TRUNCATE of such a partition
-- alone). All triggers are named auditsql_* and ENABLE ALWAYS, so
-- session_replication_role = replica does not silence them. The owner role is
-- granted SELECT on the table and its partitions, and USAGE on their
-- schemas, so that TRUNCATE can record the rows it removes; detach revokes
-- exactly what attach granted. The capture function and each trigger are
-- stamped with their fingerprint (see stamp). Runs with the caller's rights:
-- the caller must be able to create triggers on the table and be a member of
-- the owner role; auditsql.permit_ddl lets its DDL past the event triggers.
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach(regclass, text[]);
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach(regclass, text[], text);
CREATE OR REPLACE FUNCTION {{ schema | ident }}.attach(
    p_table      regclass,
    p_id_columns text[]  DEFAULT NULL,
    p_capture    text    DEFAULT NULL,
    p_exclude    text[]  DEFAULT NULL,
    p_redact     text[]  DEFAULT NULL,
    p_on_change  jsonb   DEFAULT NULL,
    p_strict     boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rel         pg_class;
    v_name        text := p_table::text;
    v_keys        text[];
    v_source      text;
    v_args        text;
    v_member      record;
    v_granted     boolean;
    v_usage       oid[];
    v_col         text;
    v_was         {{ schema | ident }}.tables;
    v_capture     text;
    v_now         {{ schema | ident }}.tables;
    v_policy      record;
    v_function    text  := format('%I.%I', {{ schema | literal }}, 'capture_' || p_table::oid);
    v_permit      text := current_setting('auditsql.permit_ddl', true);
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
       IN ('pg_catalog', 'information_schema', 'pg_toast', {{ schema | literal }}) THEN
        RAISE EXCEPTION 'auditsql: % is a system or audit table and cannot be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role(current_user, {{ owner | literal }}, 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach tables: it must be a member of %', current_user, {{ owner | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(current_user, v_rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach %: only its owner (%) can', current_user, v_name, v_rel.relowner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_rel.relispartition THEN
        RAISE EXCEPTION 'auditsql: % is a partition of %; attach the partitioned table instead, which covers all its partitions',
            v_name, pg_partition_root(p_table)
            USING ERRCODE = 'wrong_object_type';
    END IF;

    IF p_id_columns IS NOT NULL THEN
        IF cardinality(p_id_columns) = 0 THEN
            RAISE EXCEPTION 'auditsql: the id columns for % must name at least one column', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOREACH v_col IN ARRAY p_id_columns LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute
                           WHERE attrelid = p_table AND attname = v_col
                             AND attnum > 0 AND NOT attisdropped) THEN
                RAISE EXCEPTION 'auditsql: table % has no column %', v_name, quote_ident(v_col)
                    USING ERRCODE = 'undefined_column';
            END IF;
        END LOOP;
        IF (SELECT count(DISTINCT c) FROM unnest(p_id_columns) AS c) <> cardinality(p_id_columns) THEN
            RAISE EXCEPTION 'auditsql: the id columns for % name a column twice', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_keys := p_id_columns;
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

    SELECT * INTO v_was FROM {{ schema | ident }}.tables WHERE relid = p_table;
    v_capture := coalesce(p_capture, v_was.capture, 'row');
    IF v_capture NOT IN ('row', 'statement') THEN
        RAISE EXCEPTION 'auditsql: unknown capture mode %; use row or statement', quote_literal(v_capture)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_capture = 'statement' AND v_rel.relkind = 'p' THEN
        RAISE EXCEPTION 'auditsql: % is partitioned and can only be captured row by row; statement triggers on it would miss writes made straight into a partition', v_name
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Attach it with capture mode row (the default).';
    END IF;

    v_now := ROW(p_table, v_keys, v_source, v_capture,
                 coalesce(p_exclude, v_was.exclude, '{}'), coalesce(p_redact, v_was.redact, '{}'),
                 coalesce(p_on_change, v_was.on_change, '{}'), coalesce(p_strict, v_was.require_actor, false),
                 coalesce(v_was.granted_select, false), coalesce(v_was.granted_usage, '{}'),
                 coalesce(v_was.attached_at, now()), coalesce(v_was.attached_by, session_user));
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

    -- The table's row first: capture_source reads it.
    INSERT INTO {{ schema | ident }}.tables SELECT v_now.*
    ON CONFLICT (relid) DO UPDATE
        SET id_columns = excluded.id_columns, id_source = excluded.id_source,
            capture = excluded.capture, exclude = excluded.exclude, redact = excluded.redact,
            on_change = excluded.on_change, require_actor = excluded.require_actor;

    SELECT string_agg(quote_literal(c), ', ' ORDER BY o) INTO v_args
    FROM unnest(v_keys) WITH ORDINALITY AS u(c, o);

    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM {{ schema | ident }}.drop_triggers(p_table);
    -- The body is passed as a quoted literal, not dollar-quoted: column
    -- names appear in it, and a name may contain any dollar-quote tag.
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql '
                   'SECURITY DEFINER AS %L', v_function,
                   {{ schema | ident }}.capture_source(p_table));
    EXECUTE format('ALTER FUNCTION %s() OWNER TO %I', v_function, {{ owner | literal }});
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
    IF v_rel.relkind = 'p' THEN
        -- Creating a partition clones the row trigger, which PostgreSQL
        -- allows only to a role that may execute its function: the table's
        -- owner, so that its migrations can add partitions. The function
        -- refuses to run on any table outside the tree.
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s() TO %s', v_function, v_rel.relowner::regrole);
    END IF;
    EXECUTE format('COMMENT ON FUNCTION %s() IS %L', v_function,
                   format('auditsql: capture for %s (generated by attach; run attach again after altering the table)', v_name));

    IF v_capture = 'statement' THEN
        EXECUTE format('CREATE TRIGGER auditsql_capture_insert AFTER INSERT ON %s '
                       'REFERENCING NEW TABLE AS auditsql_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('CREATE TRIGGER auditsql_capture_update AFTER UPDATE ON %s '
                       'REFERENCING OLD TABLE AS auditsql_old NEW TABLE AS auditsql_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('CREATE TRIGGER auditsql_capture_delete AFTER DELETE ON %s '
                       'REFERENCING OLD TABLE AS auditsql_old '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_insert, '
                       'ENABLE ALWAYS TRIGGER auditsql_capture_update, '
                       'ENABLE ALWAYS TRIGGER auditsql_capture_delete', p_table);
    ELSE
        EXECUTE format('CREATE TRIGGER auditsql_capture_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_row', p_table);
    END IF;

    -- Each member of the table's tree: the table itself, and for a
    -- partitioned table every partition. The table and each leaf get the
    -- TRUNCATE trigger; TRUNCATE capture reads rows as the owner role, so it
    -- gets SELECT on every member and USAGE on their schemas.
    v_granted := coalesce(v_was.granted_select, false);
    v_usage := coalesce(v_was.granted_usage, '{}');
    FOR v_member IN
        SELECT c.oid::regclass AS rel, c.relkind, c.relnamespace AS nsp, n.nspname
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = p_table
           OR c.oid IN (SELECT t.relid FROM pg_partition_tree(p_table) AS t)
    LOOP
        IF v_member.rel = p_table OR v_member.relkind = 'r' THEN
            EXECUTE format('CREATE TRIGGER auditsql_capture_truncate BEFORE TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION %I.capture_truncate(%s)',
                           v_member.rel, {{ schema | literal }}, v_args);
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_truncate',
                           v_member.rel);
        END IF;
        IF NOT has_table_privilege({{ owner | literal }}, v_member.rel, 'SELECT') THEN
            EXECUTE format('GRANT SELECT ON %s TO %I', v_member.rel, {{ owner | literal }});
            v_granted := true;
        END IF;
        IF NOT has_schema_privilege({{ owner | literal }}, v_member.nsp, 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_member.nspname, {{ owner | literal }});
            v_usage := v_usage || v_member.nsp;
        END IF;
    END LOOP;

    PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_trigger'::regclass, array_agg(g.oid))
    FROM pg_trigger AS g
    WHERE g.tgrelid IN (SELECT p_table UNION ALL SELECT r.relid FROM pg_partition_tree(p_table) AS r)
      AND g.tgname LIKE 'auditsql\_%' AND g.tgparentid = 0;
    PERFORM {{ schema | ident }}.stamp('pg_catalog.pg_proc'::regclass, ARRAY[v_function::regproc::oid]);

    UPDATE {{ schema | ident }}.tables SET granted_select = v_granted, granted_usage = v_usage
    WHERE relid = p_table;

    IF v_was IS NULL
       OR (v_was.id_columns, v_was.capture, v_was.exclude, v_was.redact, v_was.on_change, v_was.require_actor)
          IS DISTINCT FROM (v_now.id_columns, v_now.capture, v_now.exclude, v_now.redact, v_now.on_change, v_now.require_actor) THEN
        PERFORM {{ schema | ident }}.record_system_event('attached', v_name, NULL,
            jsonb_build_object('id_columns', to_jsonb(v_keys), 'id_source', v_source, 'capture', v_capture,
                               'exclude', to_jsonb(v_now.exclude), 'redact', to_jsonb(v_now.redact),
                               'on_change', v_now.on_change, 'require_actor', v_now.require_actor));
    END IF;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
