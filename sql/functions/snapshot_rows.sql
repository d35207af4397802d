{% from "fragments/macros.sql" import context_columns, context_values, context_params, entity_id, redaction_marker %}
-- snapshot_rows: records a snapshot event for each row of p_table whose key
-- is one of p_keys (a JSON array of objects of the key columns), as the
-- owner role. It reads the rows itself, so a caller can record only what
-- the table holds; snapshot_batch holds them locked FOR SHARE meanwhile, so
-- that no write to them is in flight: a write before the lock has an
-- event with a lower id, a write after it a higher one.
-- row_security is off so that a policy hiding rows from the owner role
-- fails the snapshot instead of leaving rows out.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.snapshot_rows(
    p_table regclass,
    p_keys  jsonb)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
{% include "fragments/image_settings.sql" %}
SET row_security = off
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
    v_entity  record;
    v_owner   oid := (SELECT c.relowner FROM pg_class AS c WHERE c.oid = p_table);
    v_marks   jsonb;
    v_rows    integer;
BEGIN
    SELECT * INTO v_entity FROM {{ schema | ident }}.audited_entity(p_table, NULL);
    IF NOT pg_has_role(session_user, v_owner, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not snapshot %: only its owner may', session_user, p_table
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF jsonb_typeof(p_keys) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'auditsql: the keys to snapshot must be a JSON array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM {{ schema | ident }}.check_json_casts();
    -- The time the rows were read, not the statement's start: a batch of a
    -- long snapshot must not date its rows before writes that preceded it.
    v_now := clock_timestamp();
    SELECT jsonb_object_agg(r, {{ redaction_marker() }}::text) INTO v_marks
    FROM unnest((SELECT t.redact FROM {{ schema | ident }}.tables AS t WHERE t.relid = p_table)) AS r;
    EXECUTE format(
        'INSERT INTO %I.events '
        '(category, action, entity_type, entity_id, after, {{ context_columns() }}) '
        'SELECT ''data'', ''snapshot'', $1, {{ entity_id("s.oj", "$2", "$3", "$4") | replace("'", "''") }}, '
        '       (s.oj - $19) || coalesce($20, ''{}''), {{ context_params(5) }} '
        'FROM (SELECT to_jsonb(auditsql_rows.*) AS oj FROM %s AS auditsql_rows '
        '      WHERE (%s) IN (SELECT %s FROM jsonb_populate_recordset(NULL::%s, $18) AS k) OFFSET 0) AS s',
        {{ schema | literal }}, p_table,
        (SELECT string_agg(format('auditsql_rows.%I', c), ', ') FROM unnest(v_entity.id_columns) AS c),
        (SELECT string_agg(format('k.%I', c), ', ') FROM unnest(v_entity.id_columns) AS c),
        p_table)
    USING v_entity.entity_type, cardinality(v_entity.id_columns) = 1, v_entity.id_columns[1], v_entity.id_columns,
          {{ context_values() }}, p_keys,
          CASE WHEN v_admin THEN '{}' ELSE v_entity.exclude END, v_marks;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$fn$;
REVOKE ALL ON FUNCTION {{ schema | ident }}.snapshot_rows(regclass, jsonb) FROM PUBLIC;
