-- snapshot_batch: the next batch of a snapshot, in key order after p_after
-- (NULL: from the start): locks up to p_batch_size rows FOR SHARE, records
-- them (snapshot_rows) and returns how many and the key to continue after,
-- NULL once the table is done. Locks only the batch's rows, until the
-- caller commits. With the caller's rights: locking needs the rights of
-- the table's owner, which the owner role has not.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.snapshot_batch(
    p_table      regclass,
    p_after      jsonb   DEFAULT NULL,
    p_batch_size integer DEFAULT 10000)
RETURNS TABLE (recorded integer, next_after jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_entity record;
    v_keys   text;
    v_object text;
    v_typed  text;
    v_after  text;
    v_upto   text;
    v_locked jsonb;
BEGIN
    SELECT * INTO v_entity FROM {{ schema | ident }}.audited_entity(p_table, NULL);
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'auditsql: invalid batch size %: give a positive number of rows', coalesce(p_batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_after IS NOT NULL AND jsonb_typeof(p_after) <> 'object' THEN
        RAISE EXCEPTION 'auditsql: the key to continue after must be a JSON object of the key columns'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('t.%I', c), ', ' ORDER BY o),
           string_agg(format('%L, t.%I', c, c), ', ' ORDER BY o),
           string_agg(format('a.%I', c), ', ' ORDER BY o)
      INTO v_keys, v_object, v_typed
    FROM unnest(v_entity.id_columns) WITH ORDINALITY AS k(c, o);
    -- Key values come back typed through the table's own row type.
    v_after := format('($1 IS NULL OR (%s) > (SELECT %s FROM jsonb_populate_record(NULL::%s, $1) AS a))',
                      v_keys, v_typed, p_table);
    v_upto := format('($2 IS NULL OR (%s) <= (SELECT %s FROM jsonb_populate_record(NULL::%s, $2) AS a))',
                     v_keys, v_typed, p_table);
    -- The batch's last key first, unlocked; then every row up to it, locked:
    -- a row whose key moves meanwhile is recorded by its own event.
    EXECUTE format('SELECT jsonb_build_object(%s) FROM %s AS t WHERE %s ORDER BY %s OFFSET $2 - 1 LIMIT 1',
                   v_object, p_table, v_after, v_keys)
        INTO next_after USING p_after, p_batch_size;
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_object(%s)), ''[]'') '
                   'FROM (SELECT %s FROM %s AS t WHERE %s AND %s FOR SHARE OF t) AS t',
                   v_object, v_keys, p_table, v_after, v_upto)
        INTO v_locked USING p_after, next_after;
    recorded := {{ schema | ident }}.snapshot_rows(p_table, v_locked);
    RETURN NEXT;
END
$fn$;
