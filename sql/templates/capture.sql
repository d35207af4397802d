{#- The body of one audited table's capture function, as a format() template
    (attach wraps it in CREATE FUNCTION ... SECURITY DEFINER AS '<body>').
    audit.capture_source() fills the placeholders (P: format() arguments
    1-22, named below) with pieces it builds and quotes itself from the
    table, its key, its column policies and the installation settings; S is
    the audit schema with any % doubled. No other % may appear in this file
    (tests/unit/test_render.py checks).

    Rendered twice at install, once per capture mode (`mode`): 'row' (an
    AFTER ... FOR EACH ROW trigger) or 'statement' (statement triggers over
    transition tables); attach picks one. Generated per table so that the
    columns, the key and the policies are known in advance: the comparison of
    old and new values is a few jsonb lookups instead of a set-returning
    subquery, a policy the table does not use costs nothing, and each write
    is one INSERT ... SELECT (see docs/performance.md).

    It pins no search_path: a SET clause costs every call a GUC save and
    restore. Instead every name is schema-qualified and every operator
    spelled OPERATOR(pg_catalog.x); the SQL constructs that resolve an
    operator through search_path (NULLIF, IS DISTINCT FROM, IN, simple CASE,
    LIKE, JOIN ... USING) are not used. tests/sql/test_hijack.py plants
    look-alikes of everything used here ahead of pg_catalog, and reads the
    generated bodies for bare operators.

    Row images are built by to_jsonb() only after the json-cast check (a
    cast to json of a user-defined type, owned by an ordinary role, would run
    with the owner's rights) and with the row-image settings pinned. -#}
{%- from "fragments/macros.sql" import column_signature -%}
{%- set mode = mode | default('row') -%}
{%- macro S() -%}{{ schema | ident | replace('%', '%%') }}{%- endmacro -%}
{%- macro P(name) -%}
{{ {'entity_type': '%1$s', 'new_id': '%2$s', 'old_id': '%3$s', 'columns': '%4$s',
    'diff': '%5$s', 'image_suffix': '%6$s', 'redaction': '%7$s', 'admin_roles': '%8$s',
    'checks': '%9$s', 'update_filter': '%10$s', 'admin_changed': '%11$s',
    'on_change_with': '%12$s', 'on_change': '%13$s', 'admin_on_change': '%14$s',
    'all_columns': '%15$s', 'redact_columns': '%16$s', 'pin_when': '%17$s',
    'same': '%18$s', 'typed_old': '%19$s', 'typed_new': '%20$s', 'signature': '%21$s',
    'table_oid': '%22$s'}[name] }}
{%- endmacro -%}
{#- A context setting as stored (fragments/macros.sql, context_value). -#}
{%- macro setting(name) -%}
{%- from "fragments/macros.sql" import context_value -%}
{{ context_value("pg_catalog.current_setting('" ~ name ~ "', true)") }}
{%- endmacro -%}
{%- macro context_columns() -%}
category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr
{%- endmacro -%}
{#- Row level: the settings are read inside the INSERT, once per row. -#}
{%- macro row_context() -%}
'data', v_admin,
                   {{ setting('auditsql.actor_id') }},
                   {{ setting('auditsql.actor_email') }},
                   {{ setting('auditsql.actor_role') }},
                   v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   {{ setting('auditsql.user_agent') }},
                   {{ setting('auditsql.request_id') }},
                   {{ setting('application_name') }},
                   pg_catalog.inet_client_addr()
{%- endmacro -%}
{#- Statement level: read once into variables, constant for every row. -#}
{%- macro statement_context() -%}
'data', v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   v_user_agent, v_request_id, v_application_name, v_client_addr
{%- endmacro -%}
{#- True, or an error: no cast to json or jsonb of a user-defined type whose
    function an ordinary role owns. A pseudo-constant filter, so PostgreSQL
    evaluates it once per statement, before any row image is built. The
    EXISTS is a cheap index probe that finds no row in most databases;
    where casts of user-defined types to json exist (extensions such as
    hstore define some), check_json_casts() decides, and raises when it must. -#}
{%- set json_casts_checked -%}
(NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR {{ S() }}.check_json_casts())
{%- endset -%}
{#- Each INSERT below takes its FROM clause from the caller; the subquery s
    has the old image s.oj and/or the new image s.nj. Images drop excluded
    columns (P image_suffix) unless the actor is an admin, and show redacted
    columns as a marker (P redaction). -#}
{%- macro insert_created(context, entity_type) -%}
INSERT INTO {{ S() }}.events (action, entity_type, entity_id, after, {{ context_columns() }})
            SELECT 'created', {{ entity_type }}, {{ P('new_id') }}, s.nj{{ P('redaction') }},
                   {{ context() }}
{%- endmacro -%}
{#- An update by anyone but an admin stores the old values of the changed
    columns only: `before` is the expression that computes them. -#}
{%- macro insert_updated(context, entity_type, before) -%}
{{ P('on_change_with') }}INSERT INTO {{ S() }}.events (action, entity_type, entity_id, previous_entity_id, before, after, {{ context_columns() }})
            SELECT 'updated', {{ entity_type }}, {{ P('new_id') }},
                   CASE WHEN {{ P('old_id') }} OPERATOR(pg_catalog.=) {{ P('new_id') }} THEN NULL ELSE {{ P('old_id') }} END,
                   {{ before }},
                   s.nj{{ P('redaction') }},
                   {{ context() }}
{%- endmacro -%}
{#- Columns the generated comparison does not know (the table was altered
    after attach) are compared generically. -#}
{%- set generic_before -%}
{{ S() }}.changed_values(s.oj, s.nj, {{ P('redact_columns') }}::pg_catalog.text[])
{%- endset -%}
{#- Row level: whether the row has only the columns of attach time is asked
    of its image. -#}
{%- set row_before -%}
CASE WHEN (s.nj OPERATOR(pg_catalog.-) {{ P('columns') }}::pg_catalog.text[]) OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
                        THEN {{ P('diff') }}
                        ELSE {{ generic_before }} END
{%- endset -%}
{#- An update by an admin stores whole rows (redaction still applies) and
    names the changed columns, excluded ones included. `known` is an
    expression that is true when the table has only the columns of attach
    time; none means ask each row's image. -#}
{%- macro insert_admin_updated(context, entity_type, known) -%}
{{ P('on_change_with') }}INSERT INTO {{ S() }}.events (action, entity_type, entity_id, previous_entity_id, before, after, changed_columns, {{ context_columns() }})
            SELECT 'updated', {{ entity_type }}, {{ P('new_id') }},
                   CASE WHEN {{ P('old_id') }} OPERATOR(pg_catalog.=) {{ P('new_id') }} THEN NULL ELSE {{ P('old_id') }} END,
                   s.oj{{ P('redaction') }}, s.nj{{ P('redaction') }},
                   CASE WHEN {{ known or "(s.nj OPERATOR(pg_catalog.-) " ~ P('all_columns') ~ "::pg_catalog.text[]) OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb" }}
                        THEN {{ P('admin_changed') }}
                        ELSE ARRAY(SELECT pg_catalog.jsonb_object_keys({{ S() }}.changed_values(s.oj, s.nj, '{}'::pg_catalog.text[]))) END,
                   {{ context() }}
{%- endmacro -%}
{%- macro insert_deleted(context, entity_type) -%}
INSERT INTO {{ S() }}.events (action, entity_type, entity_id, before, {{ context_columns() }})
            SELECT 'deleted', {{ entity_type }}, {{ P('old_id') }}, s.oj{{ P('redaction') }},
                   {{ context() }}
{%- endmacro -%}
{#- Statement level: the old and new images of each updated row, paired by
    position, rows left byte-for-byte unchanged left out. With typed, the
    columns whose type allows it also come as they are (o<attnum> and
    n<attnum>), and `same` names the columns whose values did not change.
    The join sorts both sides (on disk, for a large statement), so they carry
    as little as they can: the row itself (COALESCE(x.*) is the whole row, a
    composite with its column names, whatever the columns are called) and
    the typed columns. The images are built from it after the join, once
    (p is not flattened: OFFSET 0), and compared one level up. -#}
{%- macro paired(image_suffix, typed) -%}
(SELECT p.oj, p.nj{% if typed %}, {{ P('same') }} AS same{% endif %}
                  FROM (SELECT pg_catalog.to_jsonb(o.r){{ image_suffix }} AS oj,
                               pg_catalog.to_jsonb(n.r){{ image_suffix }} AS nj{% if typed %}, o.*, n.*{% endif %}
                        FROM (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_old.*) AS r{% if typed %}{{ P('typed_old') }}{% endif %}
                              FROM auditsql_old) AS o
                        JOIN (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_new.*) AS r{% if typed %}{{ P('typed_new') }}{% endif %}
                              FROM auditsql_new) AS n ON n.rn OPERATOR(pg_catalog.=) o.rn
                        WHERE NOT (o.r OPERATOR(pg_catalog.*=) n.r)
                          AND {{ json_casts_checked }}
                        OFFSET 0) AS p)
{%- endmacro -%}
DECLARE
    v_saved            pg_catalog.text[];
    v_ip_raw           pg_catalog.text;
    v_ip               pg_catalog.inet;
    v_admin            pg_catalog.bool := COALESCE(
        pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.=) ANY ({{ P('admin_roles') }}::pg_catalog.text[]), false);
{%- if mode == 'statement' %}
    v_actor_id         pg_catalog.text := {{ setting('auditsql.actor_id') }};
    v_actor_email      pg_catalog.text := {{ setting('auditsql.actor_email') }};
    v_actor_role       pg_catalog.text := {{ setting('auditsql.actor_role') }};
    v_user_agent       pg_catalog.text := {{ setting('auditsql.user_agent') }};
    v_request_id       pg_catalog.text := {{ setting('auditsql.request_id') }};
    v_application_name pg_catalog.text := {{ setting('application_name') }};
    v_client_addr      pg_catalog.inet := pg_catalog.inet_client_addr();
    v_entity_type      pg_catalog.text := {{ P('entity_type') }};
    v_exact            pg_catalog.bool;
{%- endif %}
BEGIN
    -- Every capture trigger of the table and its partitions calls this
    -- function, the TRUNCATE ones too, so that dropping it drops them all.
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        PERFORM {{ S() }}.capture_truncate(TG_RELID, {{ P('table_oid') }}::pg_catalog.oid);
        RETURN NULL;
    END IF;
    {{ P('checks') }}
    IF {{ P('pin_when') }} THEN
        v_saved := {{ S() }}.pin_image_settings();
    END IF;
    v_ip_raw := {{ setting('auditsql.ip_address') }};
    IF v_ip_raw IS NOT NULL THEN
        -- A dotted quad is the common case: no function call for it.
        IF v_ip_raw OPERATOR(pg_catalog.~) '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$' THEN
            v_ip := v_ip_raw::pg_catalog.inet;
        ELSE
            v_ip := {{ S() }}.inet_or_null(v_ip_raw);
        END IF;
    END IF;

{%- if mode == 'row' %}
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        {{ insert_created(row_context, P('entity_type')) }}
        FROM (SELECT pg_catalog.to_jsonb(NEW){{ P('image_suffix') }} AS nj
              WHERE {{ json_casts_checked }}
              OFFSET 0) AS s;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- A row left byte-for-byte unchanged records nothing.
        IF NOT (OLD OPERATOR(pg_catalog.*=) NEW) THEN
            IF v_admin THEN
                {{ insert_admin_updated(row_context, P('entity_type'), none) }}
                FROM (SELECT pg_catalog.to_jsonb(OLD) AS oj, pg_catalog.to_jsonb(NEW) AS nj
                      WHERE {{ json_casts_checked }}
                      OFFSET 0) AS s{{ P('admin_on_change') }};
            ELSE
                {{ insert_updated(row_context, P('entity_type'), row_before) }}
                FROM (SELECT pg_catalog.to_jsonb(OLD){{ P('image_suffix') }} AS oj,
                             pg_catalog.to_jsonb(NEW){{ P('image_suffix') }} AS nj
                      WHERE {{ json_casts_checked }}
                      OFFSET 0) AS s
                WHERE {{ P('update_filter') }}{{ P('on_change') }};
            END IF;
        END IF;
    ELSE
        {{ insert_deleted(row_context, P('entity_type')) }}
        FROM (SELECT pg_catalog.to_jsonb(OLD){{ P('image_suffix') }} AS oj
              WHERE {{ json_casts_checked }}
              OFFSET 0) AS s;
    END IF;
{%- else %}
    -- Statement level, over the transition tables auditsql_old and
    -- auditsql_new (for tables attached with capture 'statement').
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        {{ insert_created(statement_context, 'v_entity_type') }}
        FROM (SELECT pg_catalog.to_jsonb(auditsql_new.*){{ P('image_suffix') }} AS nj FROM auditsql_new
              WHERE {{ json_casts_checked }}
              OFFSET 0) AS s;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- Old and new rows are paired by position: PostgreSQL appends both
        -- images of a row to the transition tables together. Rows left
        -- byte-for-byte unchanged record nothing. Whether the table still
        -- has exactly the columns of attach time (number, name, type and
        -- collation, P signature) is asked of the catalog once per statement:
        -- then the columns are compared as they are, those of a type whose
        -- equality is equality of their JSON image directly (P typed_old,
        -- typed_new, same), with no JSON value taken apart; otherwise the
        -- images are compared generically.
        v_exact := {{ column_signature('TG_RELID') }}
                   OPERATOR(pg_catalog.=) {{ P('signature') }}::pg_catalog.text[];
        IF v_admin THEN
            {{ insert_admin_updated(statement_context, 'v_entity_type', 'v_exact') }}
            FROM {{ paired('', false) }} AS s{{ P('admin_on_change') }};
        ELSIF v_exact THEN
            {{ insert_updated(statement_context, 'v_entity_type', "(s.oj" ~ P('redaction') ~ ") OPERATOR(pg_catalog.-) s.same") }}
            FROM {{ paired(P('image_suffix'), true) }} AS s
            WHERE {{ P('update_filter') }}{{ P('on_change') }};
        ELSE
            {{ insert_updated(statement_context, 'v_entity_type', generic_before) }}
            FROM {{ paired(P('image_suffix'), false) }} AS s
            WHERE {{ P('update_filter') }}{{ P('on_change') }};
        END IF;
    ELSE
        {{ insert_deleted(statement_context, 'v_entity_type') }}
        FROM (SELECT pg_catalog.to_jsonb(auditsql_old.*){{ P('image_suffix') }} AS oj FROM auditsql_old
              WHERE {{ json_casts_checked }}
              OFFSET 0) AS s;
    END IF;
{%- endif %}

    IF v_saved IS NOT NULL THEN
        PERFORM {{ S() }}.restore_image_settings(v_saved);
    END IF;
    RETURN NULL;
END
