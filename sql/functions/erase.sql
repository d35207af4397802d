{% from "fragments/macros.sql" import erasure_marker %}
{% from "fragments/seal.sql" import seal_images_utf8 %}
-- erase: replaces values of past events with a marker; the events stay.
-- The guards of a partition are lifted inside this transaction while a lock
-- keeps every other writer out, and restored before it returns: catalog
-- changes show to other sessions only at commit, so none sees them lifted.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.erase(
    p_entity_type text,
    p_entity_id   text,
    p_columns     text[],
    p_reason      text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $fn$
DECLARE
    v_id       text := {{ schema | ident }}.normalize_entity_id(p_entity_type, p_entity_id);
    v_keys     text[];
    v_part     record;
    v_rows     bigint;
    v_holds    boolean;
    v_total    bigint := 0;
    v_marker   jsonb := to_jsonb({{ erasure_marker() }}::text);
    v_permit   text := current_setting('auditsql.permit_ddl', true);
BEGIN
    -- As session_user: current_user is the owner role here.
    IF NOT pg_has_role(session_user, {{ admin | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not erase values from the log: it must be a member of %', session_user, {{ admin | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_entity_type IS NULL OR btrim(p_entity_type) = '' THEN
        RAISE EXCEPTION 'auditsql: erase needs an entity type, such as public.users'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' OR char_length(p_reason) > 1000 THEN
        RAISE EXCEPTION 'auditsql: erasing needs a reason of 1 to 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_columns IS NOT NULL AND (cardinality(p_columns) = 0
                                  OR array_position(p_columns, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'auditsql: the columns to erase must be named, or NULL for all but the key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM {{ schema | ident }}.legal_holds AS h
               WHERE h.entity_type = p_entity_type
                 AND (v_id IS NULL OR h.entity_id = v_id)) THEN
        RAISE EXCEPTION 'auditsql: % % is under legal hold: its events may not be erased until the hold is released',
            p_entity_type, coalesce(v_id, '(every entity)')
            USING ERRCODE = 'object_in_use';
    END IF;
    SELECT t.id_columns INTO v_keys
    FROM {{ schema | ident }}.tables AS t
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE format('%I.%I', n.nspname, c.relname) = p_entity_type;
    IF p_columns IS NOT NULL AND p_columns && coalesce(v_keys, '{}') THEN
        RAISE EXCEPTION 'auditsql: the key columns of % identify its events and cannot be erased', p_entity_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    FOR v_part IN
        SELECT p.partition AS rel
        FROM {{ schema | ident }}.event_partitions() AS p
        ORDER BY p.range_from NULLS LAST
    LOOP
        -- Only partitions that hold such events are touched (and locked).
        EXECUTE format('SELECT EXISTS (SELECT FROM %s AS e WHERE e.entity_type = $1'
                       ' AND ($2 IS NULL OR e.entity_id = $2) AND e.category IN (''data'', ''auth''))',
                       v_part.rel)
            INTO v_holds USING p_entity_type, v_id;
        CONTINUE WHEN NOT v_holds;
        PERFORM {{ schema | ident }}.lock_log(v_part.rel, 'SHARE ROW EXCLUSIVE');
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER auditsql_guard_statement,'
                       ' DISABLE TRIGGER auditsql_guard_row', v_part.rel);
        EXECUTE format('GRANT UPDATE ON %s TO %I', v_part.rel, {{ owner | literal }});
        -- The chain commits to the images through their digest: the digest
        -- of the first erasure stays, and sealing uses it, before or after
        -- this, so that no lock on the chain is needed.
        EXECUTE format(
            'INSERT INTO %I.seal_erasures (event_id, images_sha256)'
            ' SELECT e.id, {{ seal_images_utf8('e') | replace("'", "''") }}'
            ' FROM %s AS e'
            ' WHERE e.entity_type = $1 AND ($2 IS NULL OR e.entity_id = $2)'
            '   AND e.category IN (''data'', ''auth'')'
            '   AND (%s.erased(e.before, $3, $4, $5) IS DISTINCT FROM e.before'
            '        OR %s.erased(e.after, $3, $4, $5) IS DISTINCT FROM e.after)'
            ' ON CONFLICT (event_id) DO NOTHING',
            {{ schema | literal }}, v_part.rel, quote_ident({{ schema | literal }}), quote_ident({{ schema | literal }}))
            USING p_entity_type, v_id, p_columns, coalesce(v_keys, '{}'), v_marker;
        EXECUTE format(
            'UPDATE %s AS e SET before = %s.erased(e.before, $3, $4, $5),'
            '                  after = %s.erased(e.after, $3, $4, $5)'
            ' WHERE e.entity_type = $1 AND ($2 IS NULL OR e.entity_id = $2)'
            '   AND e.category IN (''data'', ''auth'')'
            '   AND (%s.erased(e.before, $3, $4, $5) IS DISTINCT FROM e.before'
            '        OR %s.erased(e.after, $3, $4, $5) IS DISTINCT FROM e.after)',
            v_part.rel, quote_ident({{ schema | literal }}), quote_ident({{ schema | literal }}),
            quote_ident({{ schema | literal }}), quote_ident({{ schema | literal }}))
            USING p_entity_type, v_id, p_columns, coalesce(v_keys, '{}'), v_marker;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_total := v_total + v_rows;
        EXECUTE format('REVOKE UPDATE ON %s FROM %I', v_part.rel, {{ owner | literal }});
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_guard_statement,'
                       ' ENABLE ALWAYS TRIGGER auditsql_guard_row', v_part.rel);
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);

    PERFORM {{ schema | ident }}.record_system_event('erased', p_entity_type, v_id,
        jsonb_build_object('columns', coalesce(to_jsonb(p_columns), '"all but the key"'),
                           'events', v_total, 'reason', p_reason,
                           'by', session_user::text));
    RETURN v_total;
END
$fn$;
