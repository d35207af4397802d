{% from "fragments/macros.sql" import context_columns, context_values, context_params, entity_id, redaction_marker %}
-- capture_truncate: what a table's capture function does for TRUNCATE. It
-- runs from the BEFORE TRUNCATE trigger, after TRUNCATE has locked the
-- table and before the rows go, and records every row as a `truncated`
-- event, so their contents stay in history.
--   p_relid  the table the trigger fired on: the audited table, or a leaf
--            partition of it
--   p_root   the audited table whose capture function calls this; a table
--            that is no longer in its tree (a partition detached since) is
--            not recorded under it
-- On an ordinary table or a leaf partition it records that table's rows. On
-- a partitioned table (TRUNCATE of the parent fires it there and on every
-- partition that has it) it records the rows of leaf partitions that have no
-- trigger of their own yet. Events name the root of the partition tree.
-- TRUNCATE is refused outside READ COMMITTED (see below).
-- Rows are read with row_security off: if row-level security would hide
-- rows from the owner role, TRUNCATE fails instead of losing them silently.
-- Column policies apply as in the generated capture functions: excluded
-- columns are left out (unless the actor is an admin), redacted ones show
-- the marker, and a table that requires an actor refuses a TRUNCATE without an actor.
-- Runs as the owner role, called by the capture functions; nobody else
-- may execute it.
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
    IF v_policy.require_actor AND v_actor_id IS NULL THEN
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
    -- Partitions are read through the partitioned table, whose privileges
    -- attach granted, filtered to the untracked ones.
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
