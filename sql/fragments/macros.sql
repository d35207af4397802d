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
    mode 'single' and 'composite' render one case only, for statements that
    branch on the key shape in PL/pgSQL (cheapest on the write path);
    'runtime' decides per call from `single`. `key` is the first key column
    and `keys` all of them. -#}
{% macro entity_id(image, mode='runtime', single='v_single', key='v_key', keys='v_keys') -%}
{%- set one -%}{{ image }} ->> {{ key }}{%- endset -%}
{%- set many -%}(SELECT jsonb_agg({{ image }} -> k.col ORDER BY k.ord)::text
           FROM unnest({{ keys }}) WITH ORDINALITY AS k(col, ord)){%- endset -%}
{%- if mode == 'single' -%}{{ one }}
{%- elif mode == 'composite' -%}{{ many }}
{%- else -%}CASE WHEN {{ single }} THEN {{ one }}
     ELSE {{ many }} END
{%- endif -%}
{%- endmacro %}

{#- Names of the columns whose values differ between two row images, in the
    order jsonb keeps keys (shorter names first). Values are compared in
    their jsonb text form, so 1.0 and 1.00 differ, as they do in the row. -#}
{% macro changed_columns(old, new) -%}
ARRAY(SELECT e.key FROM jsonb_each({{ new }}) AS e
      WHERE ({{ old }} -> e.key)::text IS DISTINCT FROM e.value::text)
{%- endmacro %}
