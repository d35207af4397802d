{% from "fragments/macros.sql" import context_columns, context_values, entity_id, changed_columns %}

{#- One INSERT ... SELECT per action; `mode` is the key shape (see entity_id). -#}
{% macro insert_created(mode) -%}
INSERT INTO {{ schema | ident }}.events
                   (action, entity_type, entity_id, after, {{ context_columns() }})
            SELECT 'created', v_entity_type, {{ entity_id('s.nj', mode) }}, s.nj, {{ context_values() }}
            FROM (SELECT to_jsonb(auditsql_new.*) AS nj FROM auditsql_new OFFSET 0) AS s;
{%- endmacro %}
{% macro insert_updated(mode) -%}
INSERT INTO {{ schema | ident }}.events
                   (action, entity_type, entity_id, previous_entity_id, before, after, changed_columns, {{ context_columns() }})
            SELECT 'updated', v_entity_type, s.new_id,
                   CASE WHEN s.old_id IS DISTINCT FROM s.new_id THEN s.old_id END,
                   s.oj, s.nj, {{ changed_columns('s.oj', 's.nj') }}, {{ context_values() }}
            FROM (SELECT p.oj, p.nj, {{ entity_id('p.oj', mode) }} AS old_id, {{ entity_id('p.nj', mode) }} AS new_id
                  FROM (SELECT o.j AS oj, n.j AS nj
                        FROM (SELECT row_number() OVER () AS rn, ROW(auditsql_old.*) AS r,
                                     to_jsonb(auditsql_old.*) AS j
                              FROM auditsql_old) AS o
                        JOIN (SELECT row_number() OVER () AS rn, ROW(auditsql_new.*) AS r,
                                     to_jsonb(auditsql_new.*) AS j
                              FROM auditsql_new) AS n USING (rn)
                        WHERE NOT (o.r *= n.r)
                        OFFSET 0) AS p
                  OFFSET 0) AS s;
{%- endmacro %}
{% macro insert_deleted(mode) -%}
INSERT INTO {{ schema | ident }}.events
                   (action, entity_type, entity_id, before, {{ context_columns() }})
            SELECT 'deleted', v_entity_type, {{ entity_id('s.oj', mode) }}, s.oj, {{ context_values() }}
            FROM (SELECT to_jsonb(auditsql_old.*) AS oj FROM auditsql_old OFFSET 0) AS s;
{%- endmacro %}
-- capture_changes: statement-level AFTER trigger for INSERT, UPDATE and
-- DELETE on an audited table, reading the statement's transition tables
-- (auditsql_old, auditsql_new). One INSERT ... SELECT per statement writes
-- one event per row; the actor and request context is read once.
-- Trigger arguments: the key columns that identify a row, in key order.
-- An UPDATE pairs old and new rows by their position in the transition
-- tables (PostgreSQL appends both images of a row together), so a changed
-- key is followed: entity_id is the new key, previous_entity_id the old one.
-- Rows an UPDATE left byte-for-byte unchanged record nothing.
-- Rows are referenced as auditsql_new.* / auditsql_old.*, which PostgreSQL
-- resolves to the relation before any column, so no column name can shadow
-- them; user columns are in scope only inside those innermost subqueries.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
{% include "fragments/image_settings.sql" %}
AS $fn$
DECLARE
{% include "fragments/context_declare.sql" %}
    v_entity_type text    := TG_RELID::regclass::text;
    v_keys        text[]  := TG_ARGV;
    v_key         text    := TG_ARGV[0];
    v_single      boolean := TG_NARGS = 1;
BEGIN
{% include "fragments/preamble.sql" %}
    IF TG_OP = 'INSERT' THEN
        IF v_single THEN
            {{ insert_created('single') }}
        ELSE
            {{ insert_created('composite') }}
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF v_single THEN
            {{ insert_updated('single') }}
        ELSE
            {{ insert_updated('composite') }}
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF v_single THEN
            {{ insert_deleted('single') }}
        ELSE
            {{ insert_deleted('composite') }}
        END IF;
    END IF;
    RETURN NULL;
END
$fn$;
