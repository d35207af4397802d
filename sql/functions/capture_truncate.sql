{% from "fragments/macros.sql" import context_columns, context_values, context_params, entity_id %}
-- capture_truncate: statement-level BEFORE TRUNCATE trigger. It runs after
-- TRUNCATE has locked the table and before the rows go, and records every
-- row as a `truncated` event, so their contents stay in history. On a
-- partitioned table it sits on each leaf partition (TRUNCATE of the parent
-- fires it on every partition; TRUNCATE of one partition fires it there),
-- and events name the root of the partition tree.
-- Trigger arguments: the key columns that identify a row, in key order.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_truncate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
    v_entity_type text := coalesce(pg_partition_root(TG_RELID), TG_RELID::regclass)::text;
BEGIN
    IF TG_NARGS < 1 THEN
        RAISE EXCEPTION 'auditsql: trigger % on % has no key columns; run attach again', TG_NAME, v_entity_type;
    END IF;
    EXECUTE format(
        'INSERT INTO {{ schema | ident }}.events '
        '(action, entity_type, entity_id, before, {{ context_columns() }}) '
        'SELECT ''truncated'', $1, {{ entity_id("s.oj", "$2", "$3", "$4") | replace("'", "''") }}, s.oj, {{ context_params(5) }} '
        'FROM (SELECT to_jsonb(t) AS oj FROM ONLY %I.%I AS t OFFSET 0) AS s',
        TG_TABLE_SCHEMA, TG_TABLE_NAME)
    USING v_entity_type, TG_NARGS = 1, TG_ARGV[0], TG_ARGV, {{ context_values() }};
    RETURN NULL;
END
$fn$;
