{#- Pieces shared by the capture functions. -#}

{#- The context columns of an events row, and their values from the
    variables of fragments/context_declare.sql, in the same order. -#}
{% macro context_columns() -%}
txid, occurred_at, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, db_user, application_name, client_addr
{%- endmacro %}

{% macro context_values() -%}
v_txid, v_now, v_admin, v_context.actor_id, v_context.actor_email, v_context.actor_role, v_context.ip_address, v_context.ip_address_raw, v_context.user_agent, v_context.request_id, v_db_user, v_context.application_name, v_client_addr
{%- endmacro %}

{#- A context value as it is set and stored, from the text expression
    `value`: NULL when NULL or empty; longer than 1024 characters, its first
    1023 followed by the cut marker, 1024 in all. Never an error: clients
    choose these values (a User-Agent header), and the application's write
    must not fail for them. Every place that sets or reads context applies
    it, so a value set with set_config directly is cut the same way. It runs
    on every audited write: `value` is evaluated up to three times, so pass a
    variable or a setting read, and a value of 1024 characters or fewer
    costs a comparison, a length and the value itself. Every name is
    qualified, for the capture template. -#}
{% macro context_value(value) -%}
CASE WHEN {{ value }} OPERATOR(pg_catalog.<>) '' THEN CASE WHEN pg_catalog.length({{ value }}) OPERATOR(pg_catalog.<=) 1024 THEN {{ value }} ELSE pg_catalog.left({{ value }}, 1023) OPERATOR(pg_catalog.||) {{ cut_marker() }} END END
{%- endmacro %}

{#- The context setting `name` (auditsql.actor_id, ..., application_name)
    as it is stored: the one way auditsql reads context for an event, in
    capture and in every function that records one, so that all agree on
    each value, whether it was set through set_context or set_config. Unset
    or empty, NULL; else cut as context_value says. -#}
{% macro context_setting(name) -%}
{{ context_value("pg_catalog.current_setting('" ~ name ~ "', true)") }}
{%- endmacro %}

{#- A dotted-quad IPv4 address: text that the cast to inet always accepts,
    so the helpers parse it without a subtransaction. -#}
{% macro dotted_quad() -%}
'^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
{%- endmacro %}

{#- What ends a cut context value: '…' (U+2026). Written as its UTF-8 bytes
    so the install script stays ASCII, and converted at run time, only when
    a value is cut: chr(8230) would be folded into a constant when the
    statement is planned, and fail then in a database whose encoding is
    not UTF8, where '~' stands in. -#}
{% macro cut_marker() -%}
CASE WHEN pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8' THEN pg_catalog.convert_from(pg_catalog.decode('e280a6', 'hex'), 'UTF8') ELSE '~' END
{%- endmacro %}

{#- The same values as EXECUTE parameters $first .. $first+12, for dynamic
    statements that pass context_values() in USING. -#}
{% macro context_params(first) -%}
{% for i in range(first, first + 13) %}${{ i }}{{ ", " if not loop.last }}{% endfor %}
{%- endmacro %}

{#- entity_id of a row image (a jsonb expression), decided per call: the key
    value as text for a single key column (`single` true), else a JSON array
    of the key values in key order. `key` is the first key column and `keys`
    all of them. Generated capture code uses key_expression() instead. -#}
{% macro entity_id(image, single, key, keys) -%}
CASE WHEN {{ single }} THEN {{ image }} ->> {{ key }}
     ELSE (SELECT jsonb_agg({{ image }} -> k.col ORDER BY k.ord)::text
           FROM unnest({{ keys }}) WITH ORDINALITY AS k(col, ord)) END
{%- endmacro %}

{#- A table's columns as they are now, in order, one text per column:
    number, type, collation and name. capture_source() records it when it
    generates a statement capture function, which compares it with the
    table's at each UPDATE; both render it from here, so they cannot
    disagree. `relid` is an expression for the table's oid. -#}
{% macro column_signature(relid) -%}
ARRAY(SELECT ROW(a.attnum, a.atttypid, a.attcollation, a.attname)::pg_catalog.text
                         FROM pg_catalog.pg_attribute AS a
                         WHERE a.attrelid OPERATOR(pg_catalog.=) {{ relid }}
                           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                         ORDER BY a.attnum)
{%- endmacro %}

{#- What erase() replaces a value with, in past events. -#}
{% macro erasure_marker() -%}
'[erased]'
{%- endmacro %}

{#- What a redacted column's value is replaced by, in before and after. -#}
{% macro redaction_marker() -%}
'[redacted]'
{%- endmacro %}

{#- Event actions. Data actions are written by capture, system actions by
    auditsql about itself: applications may log neither (action_category).
    Auth actions are the ones log_event files under category 'auth'. -#}
{% set data_actions = ['created', 'updated', 'deleted', 'truncated', 'snapshot'] %}
{% set system_actions = ['attached', 'detached', 'configured', 'retention_policy_set',
                         'retention_applied', 'default_rows_moved', 'legal_hold_placed',
                         'legal_hold_released', 'audit_ddl', 'partition_detached',
                         'partition_reattached', 'partition_dropped',
                         'capture_triggers_replaced', 'erased', 'uninstalled'] %}
{% set auth_actions = ['login', 'login_failed', 'logout', 'password_changed', 'password_reset',
                       'role_changed', 'permission_changed', 'mfa_enabled', 'mfa_disabled',
                       'session_revoked'] %}

{#- The capture triggers, one row each: name, the capture mode that has it
    ('row', 'statement', or 'any' for the TRUNCATE trigger every table and
    leaf partition gets), whether it goes on leaf partitions, and its
    definition as a format() pattern over the table (%1$s) and the
    function (%2$s). Written exactly as pg_get_triggerdef() prints a
    trigger (under a search_path of pg_catalog, pg_temp), so that one text
    both creates a trigger and tells whether a trigger in the catalog is
    one of these, unchanged. Every trigger calls the table's own capture
    function, so that dropping that function (detach) drops them all. -#}
{% macro capture_trigger_forms(alias='forms') -%}
(VALUES ('auditsql_capture_row', 'row', false,
         'CREATE TRIGGER auditsql_capture_row AFTER INSERT OR DELETE OR UPDATE ON %1$s FOR EACH ROW EXECUTE FUNCTION %2$s()'),
        ('auditsql_capture_insert', 'statement', false,
         'CREATE TRIGGER auditsql_capture_insert AFTER INSERT ON %1$s REFERENCING NEW TABLE AS auditsql_new FOR EACH STATEMENT EXECUTE FUNCTION %2$s()'),
        ('auditsql_capture_update', 'statement', false,
         'CREATE TRIGGER auditsql_capture_update AFTER UPDATE ON %1$s REFERENCING OLD TABLE AS auditsql_old NEW TABLE AS auditsql_new FOR EACH STATEMENT EXECUTE FUNCTION %2$s()'),
        ('auditsql_capture_delete', 'statement', false,
         'CREATE TRIGGER auditsql_capture_delete AFTER DELETE ON %1$s REFERENCING OLD TABLE AS auditsql_old FOR EACH STATEMENT EXECUTE FUNCTION %2$s()'),
        ('auditsql_capture_truncate', 'any', true,
         'CREATE TRIGGER auditsql_capture_truncate BEFORE TRUNCATE ON %1$s FOR EACH STATEMENT EXECUTE FUNCTION %2$s()'))
    AS {{ alias }}(name, capture, on_leaves, definition)
{%- endmacro %}

{#- Whether the columns `keys` (a text[] expression) identify the rows of
    the table `table` (a regclass expression): every one NOT NULL, and a
    unique index over some of them, with no expression and no predicate. -#}
{% macro id_columns_unique(table, keys) -%}
(NOT EXISTS (SELECT FROM unnest({{ keys }}) AS k(col)
             LEFT JOIN pg_catalog.pg_attribute AS a
                    ON a.attrelid = {{ table }} AND a.attname = k.col
                   AND a.attnum > 0 AND NOT a.attisdropped
             WHERE NOT coalesce(a.attnotnull, false))
 AND EXISTS (SELECT FROM pg_catalog.pg_index AS i
             WHERE i.indrelid = {{ table }} AND i.indisunique
               AND i.indpred IS NULL AND i.indexprs IS NULL
               AND (SELECT bool_and(a.attname = ANY ({{ keys }}))
                    FROM unnest(i.indkey) WITH ORDINALITY AS c(attnum, ord)
                    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = {{ table }} AND a.attnum = c.attnum
                    WHERE c.ord <= i.indnkeyatts)))
{%- endmacro %}

{#- The events, under alias `e`, of entity `id` of entity type `type` (two
    text expressions; pass variables or parameters, or for `id` an
    `ANY (array)`): the type compared as itself and as the hash
    events_entity_idx holds, so that the index finds this table's events
    only. -#}
{% macro is_entity(e, type, id) -%}
{{ e }}.entity_id OPERATOR(pg_catalog.=) {{ id }} AND pg_catalog.hashtext({{ e }}.entity_type) OPERATOR(pg_catalog.=) pg_catalog.hashtext({{ type }}) AND {{ e }}.entity_type OPERATOR(pg_catalog.=) {{ type }}
{%- endmacro %}
