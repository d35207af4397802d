{% from "fragments/macros.sql" import context_columns, context_values, entity_id, changed_columns %}
-- capture_row: row-level AFTER trigger for INSERT, UPDATE and DELETE on an
-- audited partitioned table. Defined on the partitioned table, PostgreSQL
-- clones it onto every partition, present and future, so rows written
-- through the parent or straight into a partition are both recorded; events
-- name the root of the partition tree (row triggers fire on the partition
-- holding the row, so TG_RELID is always a partition). An UPDATE that moves a row to another
-- partition reaches triggers as a DELETE and an INSERT, and is recorded so.
-- Trigger arguments: the key columns that identify a row, in key order.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
{% include "fragments/image_settings.sql" %}
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
    v_entity_type text    := pg_partition_root(TG_RELID)::text;
    v_keys        text[]  := TG_ARGV;
    v_key         text    := TG_ARGV[0];
    v_single      boolean := TG_NARGS = 1;
    v_old         jsonb;
    v_new         jsonb;
    v_old_id      text;
    v_new_id      text;
BEGIN
{% include "fragments/preamble.sql" %}
    IF TG_OP = 'INSERT' THEN
        v_new := to_jsonb(NEW);
        IF v_single THEN
            v_new_id := v_new ->> v_key;
        ELSE
            v_new_id := {{ entity_id('v_new', 'composite') }};
        END IF;
        INSERT INTO {{ schema | ident }}.events
               (action, entity_type, entity_id, after, {{ context_columns() }})
        VALUES ('created', v_entity_type, v_new_id, v_new, {{ context_values() }});
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD *= NEW THEN
            RETURN NULL;
        END IF;
        v_old := to_jsonb(OLD);
        v_new := to_jsonb(NEW);
        IF v_single THEN
            v_old_id := v_old ->> v_key;
            v_new_id := v_new ->> v_key;
        ELSE
            v_old_id := {{ entity_id('v_old', 'composite') }};
            v_new_id := {{ entity_id('v_new', 'composite') }};
        END IF;
        INSERT INTO {{ schema | ident }}.events
               (action, entity_type, entity_id, previous_entity_id, before, after, changed_columns, {{ context_columns() }})
        VALUES ('updated', v_entity_type, v_new_id,
                CASE WHEN v_old_id IS DISTINCT FROM v_new_id THEN v_old_id END,
                v_old, v_new, {{ changed_columns('v_old', 'v_new') }}, {{ context_values() }});
    ELSIF TG_OP = 'DELETE' THEN
        v_old := to_jsonb(OLD);
        IF v_single THEN
            v_old_id := v_old ->> v_key;
        ELSE
            v_old_id := {{ entity_id('v_old', 'composite') }};
        END IF;
        INSERT INTO {{ schema | ident }}.events
               (action, entity_type, entity_id, before, {{ context_columns() }})
        VALUES ('deleted', v_entity_type, v_old_id, v_old, {{ context_values() }});
    END IF;
    RETURN NULL;
END
$fn$;
