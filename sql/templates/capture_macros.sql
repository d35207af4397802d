{#- What the two capture templates, capture_row.sql and
    capture_statement.sql, share: the start and end of the body, the INSERT
    of each kind of event, the context an event carries, and the json-cast
    check. Their output is part of a format() template (capture_slots.sql):
    a table-dependent piece is written slot(name), the audit schema S(), and
    no other % may appear (tests/unit/test_render.py checks).

    The generated code pins no search_path: a SET clause costs every call a
    GUC save and restore. Instead every name is schema-qualified and every
    operator spelled OPERATOR(pg_catalog.x); the SQL constructs that resolve
    an operator through search_path (NULLIF, IS DISTINCT FROM, IN, simple
    CASE, LIKE, JOIN ... USING) are not used. tests/sql/test_hijack.py plants
    look-alikes of everything used here ahead of pg_catalog, and reads the
    generated bodies for bare operators. -#}
{%- from "fragments/type_lists.sql" import type_oids, json_types -%}
{%- from "templates/capture_slots.sql" import slot -%}

{#- The audit schema, with any % doubled for format(). -#}
{%- macro S() -%}{{ schema | ident | replace('%', '%%') }}{%- endmacro -%}

{#- The context columns of an event that capture fills. The others of
    fragments/macros.sql (txid, occurred_at, db_user) keep their defaults,
    which are the same values. row_context and statement_context give the
    values, after the category, in this order; capture_source copies them
    into the events of on-change policies. -#}
{%- set event_context = ['admin', 'actor_id', 'actor_email', 'actor_role', 'ip_address',
                         'ip_address_raw', 'user_agent', 'request_id', 'application_name',
                         'client_addr'] -%}
{%- macro event_context_columns() -%}
category, {{ event_context | join(', ') }}
{%- endmacro -%}
{#- Row level: the context's fields (v_c, read by the prologue), and the
    client address, which the session cannot name. -#}
{%- macro row_context() -%}
'data', v_admin IS TRUE, v_c.actor_id, v_c.actor_email, v_c.actor_role, v_c.ip_address, v_c.ip_address_raw,
                   v_c.user_agent, v_c.request_id, v_c.application_name, pg_catalog.inet_client_addr()
{%- endmacro -%}
{#- Statement level: read once into variables (declared in
    capture_statement.sql), constant for every row. -#}
{%- macro statement_context() -%}
'data', v_admin IS TRUE, v_c.actor_id, v_c.actor_email, v_c.actor_role, v_c.ip_address, v_c.ip_address_raw,
                   v_c.user_agent, v_c.request_id, v_c.application_name, v_client_addr
{%- endmacro -%}

{#- True, or an error: no cast to json or jsonb of a user-defined type whose
    function an ordinary role owns. A pseudo-constant filter, so PostgreSQL
    evaluates it once per statement, before any row image is built. The
    EXISTS is a cheap index probe that finds no row in most databases;
    where casts of user-defined types to json exist (extensions such as
    hstore define some), check_json_casts() decides, and raises when it must.
    capture_source puts it in the slot casts_checked only where the event
    triggers do not refuse such casts as they are made (or one exists);
    elsewhere the slot is true. `schema` is the audit schema as it is
    written there. -#}
{%- macro json_casts_probe(schema_sql) -%}
(NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ({{ type_oids(json_types) }}::pg_catalog.oid[]))
                   OR {{ schema_sql }}.check_json_casts())
{%- endmacro -%}
{%- set json_casts_checked -%}
{{ slot('casts_checked') }}
{%- endset -%}

{#- The declarations of both bodies; capture_statement.sql adds its own. -#}
{%- macro declarations() -%}
DECLARE
    {{ slot('pin_declare') }}
    v_context          pg_catalog.text := pg_catalog.current_setting('auditsql.context', true);
    v_c                {{ S() }}.context;
    v_admin            pg_catalog.bool;
{%- endmacro -%}

{#- TRUNCATE: every capture trigger of the table and its partitions calls
    the function, the TRUNCATE ones too, so that dropping it drops them
    all; capture_truncate records it, with its own checks. -#}
{%- macro truncate() -%}
PERFORM {{ S() }}.capture_truncate(TG_RELID, {{ slot('table_oid') }}::pg_catalog.oid);
        RETURN NULL;
{%- endmacro -%}

{#- Whether the context's actor is an admin: assigned in each branch that
    has a context, so that an event without one runs no statement for it. -#}
{%- set admin_test -%}
v_admin := v_c.actor_role OPERATOR(pg_catalog.=) ANY ({{ slot('admin_roles') }}::pg_catalog.text[]);
{%- endset -%}
{#- What both bodies do for a row or statement they record, before
    anything else: the context, the checks, the row-image settings. The
    context is one setting read and cast: the helpers store it whole,
    validated and cut (current_context() reads it the same way). Where no
    helper was called in the transaction, the six settings are read raw,
    and settings_context() makes them a context only when one of them is
    set: with none set, every field but application_name stays NULL. -#}
{%- macro prologue() -%}
    IF v_context OPERATOR(pg_catalog.<>) '' THEN
        v_c := v_context::{{ S() }}.context;
        {{ admin_test }}
    ELSIF pg_catalog.concat(pg_catalog.current_setting('auditsql.actor_id', true),
                            pg_catalog.current_setting('auditsql.actor_email', true),
                            pg_catalog.current_setting('auditsql.actor_role', true),
                            pg_catalog.current_setting('auditsql.ip_address', true),
                            pg_catalog.current_setting('auditsql.user_agent', true),
                            pg_catalog.current_setting('auditsql.request_id', true)) OPERATOR(pg_catalog.<>) '' THEN
        v_c := {{ S() }}.settings_context();
        {{ admin_test }}
    ELSE
        -- No context: no actor, so no admin (v_admin stays NULL, which
        -- every use reads as false). application_name is never longer than
        -- the cut: the server truncates it to NAMEDATALEN - 1 bytes (63;
        -- PostgreSQL 18 escapes what is not ASCII, four bytes for one).
        v_c.application_name := CASE WHEN pg_catalog.current_setting('application_name') OPERATOR(pg_catalog.<>) ''
                                     THEN pg_catalog.current_setting('application_name') END;
    END IF;
    {{ slot('checks') }}
    {{ slot('pin') }}
{%- endmacro -%}

{#- What both bodies do last. -#}
{%- macro epilogue() -%}
    {{ slot('restore') }}
    RETURN NULL;
END
{%- endmacro -%}

{#- Each INSERT below takes its FROM clause from the caller; the subquery s
    has the old image s.oj and/or the new image s.nj. Images drop excluded
    columns (slot image_suffix) unless the actor is an admin, and show
    redacted columns as a marker (slot redaction). `context` is row_context
    or statement_context. -#}
{%- macro insert_created(context, entity_type) -%}
INSERT INTO {{ S() }}.events (action, entity_type, entity_id, after, {{ event_context_columns() }})
            SELECT 'created', {{ entity_type }}, {{ slot('new_id') }}, s.nj{{ slot('redaction') }},
                   {{ context() }}
{%- endmacro -%}
{#- An update by anyone but an admin stores the old values of the changed
    columns only: `before` is the expression that computes them. -#}
{%- macro insert_updated(context, entity_type, before) -%}
{{ slot('on_change_with') }}INSERT INTO {{ S() }}.events (action, entity_type, entity_id, previous_entity_id, before, after, {{ event_context_columns() }})
            SELECT 'updated', {{ entity_type }}, {{ slot('new_id') }},
                   CASE WHEN {{ slot('old_id') }} OPERATOR(pg_catalog.=) {{ slot('new_id') }} THEN NULL ELSE {{ slot('old_id') }} END,
                   {{ before }},
                   s.nj{{ slot('redaction') }},
                   {{ context() }}
{%- endmacro -%}
{#- Columns the generated comparison does not know (the table was altered
    after attach) are compared generically. -#}
{%- set generic_before -%}
{{ S() }}.changed_values(s.oj, s.nj, {{ slot('redact_columns') }}::pg_catalog.text[])
{%- endset -%}
{#- An update by an admin stores whole rows (redaction still applies) and
    names the changed columns, excluded ones included. `known` is an
    expression that is true when the table has only the columns of attach
    time; none means ask each row's image. -#}
{%- macro insert_admin_updated(context, entity_type, known) -%}
{{ slot('on_change_with') }}INSERT INTO {{ S() }}.events (action, entity_type, entity_id, previous_entity_id, before, after, changed_columns, {{ event_context_columns() }})
            SELECT 'updated', {{ entity_type }}, {{ slot('new_id') }},
                   CASE WHEN {{ slot('old_id') }} OPERATOR(pg_catalog.=) {{ slot('new_id') }} THEN NULL ELSE {{ slot('old_id') }} END,
                   s.oj{{ slot('redaction') }}, s.nj{{ slot('redaction') }},
                   CASE WHEN {{ known or "(s.nj OPERATOR(pg_catalog.-) " ~ slot('all_columns') ~ "::pg_catalog.text[]) OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb" }}
                        THEN {{ slot('admin_changed') }}
                        ELSE ARRAY(SELECT pg_catalog.jsonb_object_keys({{ S() }}.changed_values(s.oj, s.nj, '{}'::pg_catalog.text[]))) END,
                   {{ context() }}
{%- endmacro -%}
{%- macro insert_deleted(context, entity_type) -%}
INSERT INTO {{ S() }}.events (action, entity_type, entity_id, before, {{ event_context_columns() }})
            SELECT 'deleted', {{ entity_type }}, {{ slot('old_id') }}, s.oj{{ slot('redaction') }},
                   {{ context() }}
{%- endmacro -%}
