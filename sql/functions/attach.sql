-- attach: start auditing a table. Idempotent: attaching again refreshes the
-- triggers and the key columns.
--   p_table       the table; a regclass, so PostgreSQL resolves and checks the name
--   p_id_columns  columns that identify a row, for a table without a primary
--                 key (or to override it); NULL means the primary key
-- Ordinary tables get three statement-level AFTER triggers with transition
-- tables and a BEFORE TRUNCATE trigger; partitioned tables get one row-level
-- AFTER trigger (cloned by PostgreSQL onto every partition, present and
-- future) and a BEFORE TRUNCATE trigger on the table and each leaf partition
-- (partitions created later are covered by the one on the table when it is
-- truncated; run attach again to cover a TRUNCATE of such a partition alone). All are named
-- auditsql_* and ENABLE ALWAYS, so session_replication_role = replica does
-- not silence them. The owner role is granted SELECT on the table and its
-- partitions, and USAGE on their schemas, so that TRUNCATE can record the
-- rows it removes; detach revokes exactly what attach granted. Each trigger
-- is stamped with its fingerprint (see stamp). Runs with the caller's rights:
-- the caller must be able to create triggers on the table and be a member of
-- the owner role; auditsql.permit_ddl lets its DDL past the event triggers.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.attach(
    p_table      regclass,
    p_id_columns text[] DEFAULT NULL)
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

    SELECT string_agg(quote_literal(c), ', ' ORDER BY o) INTO v_args
    FROM unnest(v_keys) WITH ORDINALITY AS u(c, o);

    SELECT * INTO v_was FROM {{ schema | ident }}.tables WHERE relid = p_table;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM {{ schema | ident }}.drop_triggers(p_table);

    IF v_rel.relkind = 'r' THEN
        EXECUTE format('CREATE TRIGGER auditsql_capture_insert AFTER INSERT ON %s '
                       'REFERENCING NEW TABLE AS auditsql_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I.capture_changes(%s)',
                       p_table, {{ schema | literal }}, v_args);
        EXECUTE format('CREATE TRIGGER auditsql_capture_update AFTER UPDATE ON %s '
                       'REFERENCING OLD TABLE AS auditsql_old NEW TABLE AS auditsql_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I.capture_changes(%s)',
                       p_table, {{ schema | literal }}, v_args);
        EXECUTE format('CREATE TRIGGER auditsql_capture_delete AFTER DELETE ON %s '
                       'REFERENCING OLD TABLE AS auditsql_old '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I.capture_changes(%s)',
                       p_table, {{ schema | literal }}, v_args);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_insert, '
                       'ENABLE ALWAYS TRIGGER auditsql_capture_update, '
                       'ENABLE ALWAYS TRIGGER auditsql_capture_delete', p_table);
    ELSE
        EXECUTE format('CREATE TRIGGER auditsql_capture_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION %I.capture_row(%s)',
                       p_table, {{ schema | literal }}, v_args);
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

    INSERT INTO {{ schema | ident }}.tables AS t
           (relid, id_columns, id_source, granted_select, granted_usage)
    VALUES (p_table, v_keys, v_source, v_granted, v_usage)
    ON CONFLICT (relid) DO UPDATE
        SET id_columns = excluded.id_columns, id_source = excluded.id_source,
            granted_select = excluded.granted_select, granted_usage = excluded.granted_usage;

    IF v_was IS NULL OR v_was.id_columns IS DISTINCT FROM v_keys THEN
        PERFORM {{ schema | ident }}.record_admin_event('attached', v_name,
            jsonb_build_object('id_columns', to_jsonb(v_keys), 'id_source', v_source));
    END IF;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;
