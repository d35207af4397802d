-- audited_entity: what the reading functions need to know of a table and an
-- id, or the error that says why they cannot answer. Runs with the caller's
-- rights: it reads audit.tables and the catalog, as any reader may.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.audited_entity(
    p_table     regclass,
    p_entity_id text)
RETURNS TABLE (entity_type text, entity_id text, id_columns text[], exclude text[])
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_relid  oid;
    v_given  jsonb;
    v_type   oid;
    v_typmod integer;
BEGIN
    IF p_table IS NULL THEN
        RAISE EXCEPTION 'auditsql: a table is required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.relid, format('%I.%I', n.nspname, c.relname), t.id_columns, t.exclude
      INTO v_relid, entity_type, id_columns, exclude
    FROM {{ schema | ident }}.tables AS t
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE t.relid = p_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'auditsql: table % is not audited', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Attach it first: SELECT %I.attach(%L).', {{ schema | literal }}, p_table::text);
    END IF;
    IF p_entity_id IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- A wrong id would find no event and read as "no such row": refuse
    -- what cannot be an id of this table instead.
    IF cardinality(id_columns) > 1 THEN
        BEGIN
            v_given := p_entity_id::jsonb;
        EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
            v_given := NULL;
        END;
        IF jsonb_typeof(v_given) IS DISTINCT FROM 'array' OR jsonb_array_length(v_given) <> cardinality(id_columns) THEN
            RAISE EXCEPTION 'auditsql: % is not an id of %: give its % key values (%) as a JSON array, such as [7, "b"]',
                quote_literal(left(p_entity_id, 80)), entity_type, cardinality(id_columns), array_to_string(id_columns, ', ')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        SELECT a.atttypid, a.atttypmod INTO v_type, v_typmod
        FROM pg_attribute AS a
        WHERE a.attrelid = v_relid AND a.attname = id_columns[1] AND NOT a.attisdropped;
        -- Built-in types only: another type's input function is its
        -- owner's code.
        IF v_type < 16384 THEN
            BEGIN
                EXECUTE format('SELECT $1::%s', format_type(v_type, NULL)) USING p_entity_id;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'auditsql: % is not an id of %: its key % is of type %',
                    quote_literal(left(p_entity_id, 80)), entity_type, id_columns[1], format_type(v_type, v_typmod)
                    USING ERRCODE = 'invalid_parameter_value';
            END;
        END IF;
    END IF;
    entity_id := {{ schema | ident }}.normalize_entity_id(entity_type, p_entity_id);
    RETURN NEXT;
END
$fn$;
