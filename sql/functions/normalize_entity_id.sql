{% from "fragments/macros.sql" import is_entity %}
-- normalize_entity_id: an entity id as the log spells it, from the way a
-- person typed it (docs/retention.md#how-entity-ids-are-read). Runs with the
-- caller's rights: it reads only audit.tables and the log.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.normalize_entity_id(
    p_entity_type text,
    p_entity_id   text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
{% include "fragments/image_settings.sql" %}
AS $fn$
DECLARE
    v_relid  oid;
    v_keys   text[];
    v_given  jsonb;
    v_value  jsonb;
    v_text   text;
    v_type   oid;
    v_typmod integer;
    v_kind   "char";
    v_base   oid;
    v_dommod integer;
    v_exact  boolean;
    v_typed  jsonb := '[]'::jsonb;
    v_norm   text;
BEGIN
    IF p_entity_id IS NULL THEN
        RETURN NULL;
    END IF;
    -- The table found by its name through the catalog's index, not by
    -- spelling the name of every table: only text shaped as format('%I.%I')
    -- spells it can name one, and to_regclass reads that shape without
    -- error on every version.
    SELECT t.relid, t.id_columns INTO v_relid, v_keys
    FROM {{ schema | ident }}.tables AS t
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE t.relid = CASE WHEN p_entity_type ~ '^("([^"]|"")+"|[a-z_][a-z0-9_]*)[.]("([^"]|"")+"|[a-z_][a-z0-9_]*)$'
                         THEN to_regclass(p_entity_type) END
      AND format('%I.%I', n.nspname, c.relname) = p_entity_type;
    IF FOUND THEN
        BEGIN
            v_given := CASE WHEN cardinality(v_keys) = 1 THEN jsonb_build_array(p_entity_id)
                            ELSE p_entity_id::jsonb END;
            IF jsonb_typeof(v_given) = 'array' AND jsonb_array_length(v_given) = cardinality(v_keys) THEN
                FOR i IN 1 .. cardinality(v_keys) LOOP
                    v_value := v_given -> (i - 1);
                    v_text := CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}'
                                                         WHEN 'null' THEN NULL
                                                         ELSE v_value::text END;
                    SELECT a.atttypid, a.atttypmod INTO v_type, v_typmod
                    FROM pg_attribute AS a
                    WHERE a.attrelid = v_relid AND a.attname = v_keys[i] AND NOT a.attisdropped;
                    -- Through domains to the base type, so that no domain
                    -- check runs, keeping the nearest type modifier.
                    LOOP
                        SELECT ty.typtype, ty.typbasetype, ty.typtypmod INTO v_kind, v_base, v_dommod
                        FROM pg_type AS ty WHERE ty.oid = v_type;
                        EXIT WHEN v_kind IS DISTINCT FROM 'd';
                        v_typmod := CASE WHEN v_typmod >= 0 THEN v_typmod ELSE v_dommod END;
                        v_type := v_base;
                    END LOOP;
                    -- Built-in types only: another type's input function is
                    -- its owner's code.
                    IF v_type IS NULL OR v_type >= 16384 THEN
                        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported';
                    END IF;
                    IF v_typmod >= 0 THEN
                        -- Read with the modifier only when that changes
                        -- nothing but the spelling (1.5 as 1.50), never the
                        -- value (1.505 rounded, 'abcd' cut to 'abc').
                        EXECUTE format('SELECT pg_catalog.to_jsonb(x.v), x.v OPERATOR(pg_catalog.=) $1::%s'
                                       ' FROM (SELECT $1::%s AS v) AS x',
                                       format_type(v_type, NULL), format_type(v_type, v_typmod))
                            INTO v_value, v_exact USING v_text;
                        IF NOT coalesce(v_exact, v_text IS NULL) THEN
                            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value';
                        END IF;
                    ELSE
                        EXECUTE format('SELECT pg_catalog.to_jsonb($1::%s)', format_type(v_type, NULL))
                            INTO v_value USING v_text;
                    END IF;
                    v_typed := v_typed || jsonb_build_array(v_value);
                END LOOP;
                v_norm := CASE WHEN cardinality(v_keys) = 1 THEN v_typed ->> 0 ELSE v_typed::text END;
            END IF;
        EXCEPTION
            WHEN data_exception OR undefined_function OR feature_not_supported
                 OR cannot_coerce OR program_limit_exceeded THEN
                v_norm := NULL;
        END;
        IF v_norm IS NOT NULL THEN
            IF v_norm <> p_entity_id
               AND NOT EXISTS (SELECT FROM {{ schema | ident }}.events AS e
                               WHERE {{ is_entity('e', 'p_entity_type', 'v_norm') }})
               AND EXISTS (SELECT FROM {{ schema | ident }}.events AS e
                           WHERE {{ is_entity('e', 'p_entity_type', 'p_entity_id') }}) THEN
                RETURN p_entity_id;
            END IF;
            RETURN v_norm;
        END IF;
    END IF;

    IF EXISTS (SELECT FROM {{ schema | ident }}.events AS e
               WHERE {{ is_entity('e', 'p_entity_type', 'p_entity_id') }}) THEN
        RETURN p_entity_id;
    END IF;
    BEGIN
        v_given := p_entity_id::jsonb;
    EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
        RETURN p_entity_id;
    END;
    RETURN CASE WHEN jsonb_typeof(v_given) = 'array' THEN v_given::text ELSE p_entity_id END;
END
$fn$;
