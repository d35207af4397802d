{% from "fragments/macros.sql" import context_columns, context_values, context_params, entity_id, redaction_marker %}
-- capture_truncate: records the rows a TRUNCATE is about to remove. The
-- BEFORE TRUNCATE trigger fires once TRUNCATE holds its lock: no row can
-- come or go between this read and the truncation.
-- Not SECURITY DEFINER: it runs as the owner role inside the capture
-- functions that call it, and nobody else may execute it. row_security is
-- off so that a policy hiding rows from the owner role fails the TRUNCATE
-- instead of losing those rows.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_truncate(p_relid oid, p_root oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
{% include "fragments/image_settings.sql" %}
SET row_security = off
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
    v_entity_type text := p_root::regclass::text;
    v_untracked   oid[];
    v_policy      record;
BEGIN
    IF coalesce(pg_partition_root(p_relid)::oid, p_relid) <> p_root THEN
        RETURN;
    END IF;
    PERFORM {{ schema | ident }}.check_json_casts();
    SELECT t.id_columns, t.exclude, t.redact, t.require_actor OR s.require_actor AS require_actor,
           (SELECT jsonb_object_agg(r, {{ redaction_marker() }}::text) FROM unnest(t.redact) AS r) AS marks
      INTO v_policy
    FROM {{ schema | ident }}.tables AS t, {{ schema | ident }}.settings AS s
    WHERE t.relid = p_root;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_policy.require_actor AND v_context.actor_id IS NULL THEN
        RAISE EXCEPTION 'auditsql: TRUNCATE on % needs an actor: this table accepts attributed writes only', p_relid::regclass
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = format('Name the actor in the same transaction first: SELECT %I.set_actor(...).', {{ schema | literal }});
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE this query would see the rows of
    -- the transaction's snapshot, while TRUNCATE removes every row, including
    -- rows committed since: those would vanish unrecorded. Refuse instead.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'auditsql: TRUNCATE of audited table % needs READ COMMITTED isolation, not %', v_entity_type, current_setting('transaction_isolation')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Rows committed after this transaction began would leave no audit event. Run the TRUNCATE in a READ COMMITTED transaction, or use DELETE.';
    END IF;
    -- TRUNCATE of a partitioned table fires here and on every partition
    -- that has its own trigger: read only the leaves that have none yet.
    IF (SELECT relkind FROM pg_class WHERE oid = p_relid) = 'p' THEN
        SELECT array_agg(t.relid) INTO v_untracked
        FROM pg_partition_tree(p_relid) AS t
        WHERE t.isleaf
          AND NOT EXISTS (SELECT FROM pg_trigger AS g
                          WHERE g.tgrelid = t.relid AND g.tgname = 'auditsql_capture_truncate');
        IF v_untracked IS NULL THEN
            RETURN;
        END IF;
    END IF;
    -- Leaves are read through the partitioned table, on which attach granted
    -- the owner role SELECT.
    EXECUTE format(
        'INSERT INTO %I.events '
        '(category, action, entity_type, entity_id, before, {{ context_columns() }}) '
        'SELECT ''data'', ''truncated'', $1, {{ entity_id("s.oj", "$2", "$3", "$4") | replace("'", "''") }}, '
        '       (s.oj - $19) || coalesce($20, ''{}''), {{ context_params(5) }} '
        'FROM (SELECT to_jsonb(auditsql_rows.*) AS oj FROM %s %s AS auditsql_rows '
        '      WHERE $18 IS NULL OR auditsql_rows.tableoid = ANY ($18) OFFSET 0) AS s',
        {{ schema | literal }}, CASE WHEN v_untracked IS NULL THEN 'ONLY' ELSE '' END,
        p_relid::regclass)
    USING v_entity_type, cardinality(v_policy.id_columns) = 1, v_policy.id_columns[1], v_policy.id_columns,
          {{ context_values() }}, v_untracked,
          CASE WHEN v_admin THEN '{}' ELSE v_policy.exclude END, v_policy.marks;
END
$fn$;
REVOKE ALL ON FUNCTION {{ schema | ident }}.capture_truncate(oid, oid) FROM PUBLIC;
