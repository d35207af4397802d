{% from "fragments/macros.sql" import column_signature, redaction_marker %}
{%- from "fragments/type_lists.sql" import type_oids, jsonb_comparable_types, setting_free_types,
   typed_types, typed_collated_types, typed_text_types %}
{%- from "templates/capture_slots.sql" import capture_slots %}
{%- from "templates/capture_macros.sql" import event_context, json_casts_probe with context %}
-- capture_source: the body of a table's capture function, from its row in
-- audit.tables and audit.settings (slots: templates/capture_slots.sql).
-- Every piece taken from the catalog or the tables is quoted here, by
-- format('%I'), quote_literal() or %L; the templates are fixed at install.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.capture_source(p_table regclass)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_table        {{ schema | ident }}.tables;
    v_settings     {{ schema | ident }}.settings;
    v_kind         "char";
    v_diff_list    text;
    v_changed_list text;
    v_returning    text;
    v_guarded      boolean;
    v_pin_when     text;
    v_columns      text;
    -- One variable per slot of the templates, each named for its slot.
{%- for name, what in capture_slots.items() %}
    {{ '%-18s' | format('v_' ~ name) }} text;  -- {{ what }}
{%- endfor %}
BEGIN
    SELECT * INTO v_table FROM {{ schema | ident }}.tables WHERE relid = p_table;
    SELECT * INTO v_settings FROM {{ schema | ident }}.settings;
    SELECT c.relkind INTO v_kind FROM pg_class AS c WHERE c.oid = p_table;

    -- x.cmp, a format() pattern over the column name (1), the old image (2)
    -- and the new one (3), compares by jsonb only the types whose jsonb
    -- equality is exact (type_lists.sql); jsonb calls 1.0 and 1.00 equal, so
    -- other values compare as text. A redacted column absent from both images
    -- (dropped since attach) counts as unchanged. x.typed, over the column's
    -- number, compares a column as it is, for statement capture. l is the
    -- type seen through one domain and one array level: rows, ranges and
    -- other types not listed count as depending on the row-image settings.
    SELECT quote_literal(array_agg(a.attname::text ORDER BY a.attnum)),
           quote_literal(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attname <> ALL (v_table.exclude))),
           string_agg(format(x.cmp, quote_literal(a.attname), 's.oj', 's.nj'),
                      E',\n                             ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> ALL (v_table.exclude)),
           string_agg(format(
               'CASE WHEN COALESCE((s.oj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (s.nj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text, true) THEN NULL ELSE %1$s END',
               quote_literal(a.attname)), E',\n                             ' ORDER BY a.attnum),
           CASE WHEN bool_and(l.typtype = 'e' OR l.oid = ANY ({{ type_oids(setting_free_types) }}::oid[])) THEN 'false'
                ELSE 'pg_catalog.current_setting(''extra_float_digits'') OPERATOR(pg_catalog.<>) ''1''
       OR pg_catalog.current_setting(''IntervalStyle'') OPERATOR(pg_catalog.<>) ''postgres''
       OR pg_catalog.current_setting(''bytea_output'') OPERATOR(pg_catalog.<>) ''hex''' END,
           'ARRAY[' || coalesce(string_agg(
               CASE WHEN x.typed IS NOT NULL
                    THEN format('CASE WHEN ' || x.typed || ' OR (p.o%1$s IS NULL AND p.n%1$s IS NULL) THEN %2$s END',
                                a.attnum, quote_literal(a.attname))
                    ELSE format(x.cmp, quote_literal(a.attname), 'p.oj', 'p.nj') END,
               E',\n                             ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> ALL (v_table.exclude)), '') || ']::pg_catalog.text[]',
           coalesce(string_agg(format(', auditsql_old.%I AS o%s', a.attname, a.attnum), '' ORDER BY a.attnum)
               FILTER (WHERE x.typed IS NOT NULL AND a.attname <> ALL (v_table.exclude)), ''),
           coalesce(string_agg(format(', auditsql_new.%I AS n%s', a.attname, a.attnum), '' ORDER BY a.attnum)
               FILTER (WHERE x.typed IS NOT NULL AND a.attname <> ALL (v_table.exclude)), '')
      INTO v_all_columns, v_columns, v_diff_list, v_changed_list, v_pin_when, v_same, v_typed_old, v_typed_new
    FROM pg_attribute AS a
    JOIN pg_type AS ty ON ty.oid = a.atttypid
    LEFT JOIN pg_type AS b ON b.oid = ty.typbasetype
    LEFT JOIN pg_type AS e ON e.oid = coalesce(b.typelem, ty.typelem)
                          AND coalesce(b.typsubscript, ty.typsubscript) = 'pg_catalog.array_subscript_handler'::regproc
    LEFT JOIN pg_type AS eb ON eb.oid = e.typbasetype
    JOIN pg_type AS l ON l.oid = coalesce(eb.oid, e.oid, b.oid, ty.oid)
    LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
    CROSS JOIN LATERAL (SELECT coalesce(b.oid, ty.oid) AS oid) AS base
    CROSS JOIN LATERAL (SELECT
        CASE WHEN a.attname = ANY (v_table.redact)
             THEN 'CASE WHEN COALESCE((%2$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (%3$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text, true) THEN %1$s END'
             WHEN base.oid = ANY ({{ type_oids(jsonb_comparable_types) }}::oid[])
             THEN 'CASE WHEN (%2$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text) OPERATOR(pg_catalog.=) (%3$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text) THEN %1$s END'
             ELSE 'CASE WHEN (%2$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (%3$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text THEN %1$s END'
        END AS cmp,
        CASE WHEN base.oid = ANY ({{ type_oids(typed_types) }}::oid[])
                  OR (base.oid = ANY ({{ type_oids(typed_collated_types) }}::oid[]) AND coalesce(co.collisdeterministic, false))
             THEN 'p.o%1$s OPERATOR(pg_catalog.=) p.n%1$s'
             WHEN base.oid = ANY ({{ type_oids(typed_text_types) }}::oid[])
             THEN 'p.o%1$s::pg_catalog.text OPERATOR(pg_catalog.=) p.n%1$s::pg_catalog.text'
        END AS typed
    ) AS x
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;
    v_signature := quote_literal({{ column_signature('p_table') }});
    v_table_oid := p_table::oid;
    v_new_id := {{ schema | ident }}.key_expression('s.nj', v_table.id_columns);
    v_old_id := {{ schema | ident }}.key_expression('s.oj', v_table.id_columns);
    v_admin_roles := quote_literal(v_settings.admin_roles);
    v_redact_columns := quote_literal(v_table.redact);

    -- Where the event triggers are in force, every ALTER TABLE or ALTER
    -- SCHEMA that renames an audited table refreshes its capture function
    -- (ddl_guard), which can then hold the table's name as a constant.
    v_guarded := EXISTS (SELECT FROM pg_event_trigger AS t
                         WHERE t.evtname = {{ ddl_trigger | literal }} AND t.evtevent = 'ddl_command_end'
                           AND t.evtenabled = 'A');
    IF v_guarded THEN
        v_entity_type := (SELECT quote_literal(format('%I.%I', n.nspname, c.relname)) || '::pg_catalog.text'
                          FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                          WHERE c.oid = p_table);
    ELSIF v_kind = 'p' THEN
        -- Row triggers fire on the partition that holds the row; events name
        -- the root, looked up by oid so that a rename is followed.
        v_entity_type := format(
            '(SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) ''.'' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)'
            ' FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace'
            ' WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid)', p_table::oid);
    ELSE
        -- One function call: each call in a statement the capture runs per
        -- event costs that statement a lookup when it starts.
        v_entity_type := 'pg_catalog.format(''%I.%I'', TG_TABLE_SCHEMA, TG_TABLE_NAME)';
    END IF;

    -- The settings are pinned only for a table with a column whose image
    -- depends on them; the others get no statement at all, since every
    -- statement of the body costs each transaction a compiled expression.
    v_pin_declare := '';
    v_pin := '';
    v_restore := '';
    IF v_pin_when <> 'false' THEN
        v_pin_declare := 'v_saved            pg_catalog.text[];';
        v_pin := format(E'IF %s THEN\n        v_saved := %I.pin_image_settings();\n    END IF;',
                        v_pin_when, {{ schema | literal }});
        v_restore := format(E'IF v_saved IS NOT NULL THEN\n        PERFORM %I.restore_image_settings(v_saved);\n    END IF;',
                            {{ schema | literal }});
    END IF;

    -- The comparison generated below knows the columns of attach time; an
    -- update of a row with others is compared generically. Where the event
    -- triggers refresh capture after every ALTER TABLE, the function always
    -- knows the table's columns, and the planner drops the generic branch
    -- with the test. Should one not be refreshed (the DDL was let through
    -- by auditsql.permit_ddl, or the refresh failed, which ddl_guard warns
    -- of and verify reports), a column added or renamed since is never
    -- subtracted from `before`: it is stored whether it changed or not.
    IF v_guarded THEN
        v_known := 'true';
    ELSE
        v_known := format('(s.nj OPERATOR(pg_catalog.-) %s::pg_catalog.text[]) OPERATOR(pg_catalog.=) ''{}''::pg_catalog.jsonb',
                          v_columns);
    END IF;

    v_redaction := '';
    IF v_table.redact <> '{}' THEN
        v_redaction := format(' OPERATOR(pg_catalog.||) %L::pg_catalog.jsonb',
            (SELECT jsonb_object_agg(r, {{ redaction_marker() }}::text) FROM unnest(v_table.redact) AS r));
    END IF;
    -- jsonb minus an array of keys passes over NULL elements.
    v_diff := format('(s.oj%s) OPERATOR(pg_catalog.-) ARRAY[%s]::pg_catalog.text[]', v_redaction, v_diff_list);
    v_admin_changed := format('pg_catalog.array_remove(ARRAY[%s]::pg_catalog.text[], NULL::pg_catalog.text)',
                              v_changed_list);

    v_image_suffix := '';
    v_update_filter := 'true';
    IF v_table.exclude <> '{}' THEN
        v_image_suffix := format(
            ' OPERATOR(pg_catalog.-) CASE WHEN v_admin THEN ''{}''::pg_catalog.text[] ELSE %L::pg_catalog.text[] END',
            v_table.exclude);
        v_update_filter := '(s.oj)::pg_catalog.text OPERATOR(pg_catalog.<>) (s.nj)::pg_catalog.text';
    END IF;

    v_checks := '';
    IF v_table.require_actor OR v_settings.require_actor THEN
        v_checks := 'IF v_c.actor_id IS NULL THEN
        RAISE EXCEPTION ''auditsql: % on % needs an actor: this table accepts attributed writes only'', TG_OP, TG_TABLE_NAME
            USING ERRCODE = ''invalid_authorization_specification'',
                  HINT = ' || quote_literal(format('Name the actor in the same transaction first: SELECT %I.set_actor(...).',
                                                   {{ schema | literal }})) || ';
    END IF;';
    END IF;

    IF v_kind = 'p' THEN
        -- The partitioned table's owner may execute the function (see
        -- attach_complete), so it must not record a table outside the tree
        -- under this table's name.
        v_checks := v_checks || format(
            E'\n    IF COALESCE(pg_catalog.pg_partition_root(TG_RELID)::pg_catalog.oid OPERATOR(pg_catalog.<>) %s::pg_catalog.oid, true) THEN'
            || E'\n        RAISE EXCEPTION ''auditsql: this capture function records %%, not %%'', %L, TG_TABLE_NAME'
            || E'\n            USING ERRCODE = ''insufficient_privilege'';'
            || E'\n    END IF;', p_table::oid, p_table::text);
    END IF;

    -- The probe costs each event a subquery and a call. Where the event
    -- triggers are in force they refuse a cast to json of a user-defined
    -- type that an ordinary role's function implements as it is made
    -- (ddl_guard), so only one made before them needs it; verify reports a
    -- capture function that no longer matches this choice.
    IF v_guarded
       AND NOT EXISTS (SELECT FROM pg_cast AS c
                       JOIN pg_proc AS p ON p.oid = c.castfunc
                       JOIN pg_roles AS r ON r.oid = p.proowner
                       WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype)
                         AND c.castsource >= 16384 AND NOT r.rolsuper) THEN
        v_casts_checked := 'true';
    ELSE
        v_casts_checked := {{ json_casts_probe(schema | ident) | literal }};
    END IF;

    v_on_change_with := '';
    v_on_change := '';
    v_admin_on_change := '';
    IF v_table.on_change <> '{}' THEN
        v_returning := format(
            E'\n            RETURNING id, entity_type, entity_id, before, after, changed_columns, {{ event_context | join(', ') }})'
            || E'\n        INSERT INTO %I.events (category, action, caused_by, entity_type, entity_id, before, after, {{ event_context | join(', ') }})'
            || E'\n        SELECT ''auth'', x.action, ins.id, ins.entity_type, ins.entity_id,'
            || E'\n               pg_catalog.jsonb_build_object(x.col, ins.before OPERATOR(pg_catalog.->) x.col),'
            || E'\n               pg_catalog.jsonb_build_object(x.col, ins.after OPERATOR(pg_catalog.->) x.col),'
            || E'\n               ins.{{ event_context | join(', ins.') }}'
            || E'\n        FROM ins, (VALUES %s) AS x(col, action)',
            {{ schema | literal }},
            (SELECT string_agg(format('(%L::pg_catalog.text, %L::pg_catalog.text)', o.key, o.value), ', ' ORDER BY o.key)
             FROM jsonb_each_text(v_table.on_change) AS o));
        v_on_change_with := 'WITH ins AS (';
        v_on_change := v_returning || E'\n        WHERE ins.before OPERATOR(pg_catalog.?) x.col';
        v_admin_on_change := v_returning || E'\n        WHERE ins.changed_columns OPERATOR(pg_catalog.@>) ARRAY[x.col]';
    END IF;

    RETURN format(
        CASE v_table.capture
        WHEN 'row' THEN
            $tpl${% include "templates/capture_row.sql" %}$tpl$
        WHEN 'statement' THEN
            $tpl${% include "templates/capture_statement.sql" %}$tpl$
        END
        {%- for name in capture_slots %},
        v_{{ name }}
        {%- endfor %});
END
$fn$;
