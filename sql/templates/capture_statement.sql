{#- The body of a capture function for statement capture (AFTER ... FOR
    EACH STATEMENT triggers over the transition tables auditsql_old and
    auditsql_new, for bulk writers): the other mode of capture_row.sql,
    whose notes apply. -#}
{%- from "fragments/macros.sql" import column_signature -%}
{%- from "templates/capture_slots.sql" import slot -%}
{%- from "templates/capture_macros.sql" import declarations, truncate, prologue, epilogue, statement_context,
    json_casts_checked, generic_before, insert_created, insert_updated, insert_admin_updated,
    insert_deleted with context -%}
{#- The old and new images of each updated row, paired by position, rows
    left byte-for-byte unchanged left out. With typed, the columns whose
    type allows it also come as they are (o<attnum> and n<attnum>), and
    `same` names the columns whose values did not change. The join sorts
    both sides (on disk, for a large statement), so they carry as little as
    they can: the row itself (COALESCE(x.*) is the whole row, a composite
    with its column names, whatever the columns are called) and the typed
    columns. The images are built from it after the join, once (p is not
    flattened: OFFSET 0), and compared one level up. -#}
{%- macro paired(image_suffix, typed) -%}
(SELECT p.oj, p.nj{% if typed %}, {{ slot('same') }} AS same{% endif %}
                  FROM (SELECT pg_catalog.to_jsonb(o.r){{ image_suffix }} AS oj,
                               pg_catalog.to_jsonb(n.r){{ image_suffix }} AS nj{% if typed %}, o.*, n.*{% endif %}
                        FROM (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_old.*) AS r{% if typed %}{{ slot('typed_old') }}{% endif %}
                              FROM auditsql_old) AS o
                        JOIN (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_new.*) AS r{% if typed %}{{ slot('typed_new') }}{% endif %}
                              FROM auditsql_new) AS n ON n.rn OPERATOR(pg_catalog.=) o.rn
                        WHERE NOT (o.r OPERATOR(pg_catalog.*=) n.r)
                          AND {{ json_casts_checked }}
                        OFFSET 0) AS p)
{%- endmacro -%}
{{ declarations() }}
    v_client_addr      pg_catalog.inet := pg_catalog.inet_client_addr();
    v_entity_type      pg_catalog.text := {{ slot('entity_type') }};
    v_exact            pg_catalog.bool;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        {{ truncate() }}
    END IF;
    {{ prologue() }}
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        {{ insert_created(statement_context, 'v_entity_type') }}
        FROM (SELECT pg_catalog.to_jsonb(auditsql_new.*){{ slot('image_suffix') }} AS nj FROM auditsql_new
              WHERE {{ json_casts_checked }}
              OFFSET 0) AS s;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- Old and new rows are paired by position: PostgreSQL appends both
        -- images of a row to the transition tables together. Whether the
        -- table has the columns of attach time is asked of the catalog once
        -- per statement, not of each row's image.
        {#- The columns of attach time: slot signature; the columns compared
            as they are: slots typed_old, typed_new and same. #}
        v_exact := {{ column_signature('TG_RELID') }}
                   OPERATOR(pg_catalog.=) {{ slot('signature') }}::pg_catalog.text[];
        IF v_admin THEN
            {{ insert_admin_updated(statement_context, 'v_entity_type', 'v_exact') }}
            FROM {{ paired('', false) }} AS s{{ slot('admin_on_change') }};
        ELSIF v_exact THEN
            {{ insert_updated(statement_context, 'v_entity_type', "(s.oj" ~ slot('redaction') ~ ") OPERATOR(pg_catalog.-) s.same") }}
            FROM {{ paired(slot('image_suffix'), true) }} AS s
            WHERE {{ slot('update_filter') }}{{ slot('on_change') }};
        ELSE
            {{ insert_updated(statement_context, 'v_entity_type', generic_before) }}
            FROM {{ paired(slot('image_suffix'), false) }} AS s
            WHERE {{ slot('update_filter') }}{{ slot('on_change') }};
        END IF;
    ELSE
        {{ insert_deleted(statement_context, 'v_entity_type') }}
        FROM (SELECT pg_catalog.to_jsonb(auditsql_old.*){{ slot('image_suffix') }} AS oj FROM auditsql_old
              WHERE {{ json_casts_checked }}
              OFFSET 0) AS s;
    END IF;

    {{ epilogue() }}
