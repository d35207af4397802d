{#- Pieces shared by the capture functions. -#}

{#- The context columns of an events row, and their values from the
    variables of fragments/context_declare.sql, in the same order. -#}
{% macro context_columns() -%}
txid, occurred_at, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, db_user, application_name, client_addr
{%- endmacro %}

{% macro context_values() -%}
v_txid, v_now, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END, v_user_agent, v_request_id, v_db_user, v_app_name, v_client_addr
{%- endmacro %}

{#- The same values as EXECUTE parameters $first .. $first+11, for dynamic
    statements that pass context_values() in USING. -#}
{% macro context_params(first) -%}
{% for i in range(first, first + 12) %}${{ i }}{{ ", " if not loop.last }}{% endfor %}
{%- endmacro %}

{#- entity_id of a row image (a jsonb expression): the key value as text for
    a single key column, else a JSON array of the key values in key order.
    Uses v_single, v_key (the first key column) and v_keys (all of them). -#}
{% macro entity_id(image, single='v_single', key='v_key', keys='v_keys') -%}
CASE WHEN {{ single }} THEN {{ image }} ->> {{ key }}
     ELSE (SELECT jsonb_agg({{ image }} -> k.col ORDER BY k.ord)::text
           FROM unnest({{ keys }}) WITH ORDINALITY AS k(col, ord)) END
{%- endmacro %}

{#- Names of the columns whose values differ between two row images, sorted.
    jsonb equality treats 1.0 and 1.00 as equal; for numbers, arrays and
    objects the text forms are compared as well, so no change is missed. -#}
{% macro changed_columns(old, new) -%}
ARRAY(SELECT e.key FROM jsonb_each({{ new }}) AS e
      WHERE e.value IS DISTINCT FROM {{ old }} -> e.key
         OR (jsonb_typeof(e.value) IN ('number', 'array', 'object')
             AND e.value::text IS DISTINCT FROM ({{ old }} -> e.key)::text)
      ORDER BY e.key)
{%- endmacro %}
