{#- The sealing encoding (docs/integrity.md#encoding), shared by seal()
    and verify_chain() so that the two cannot disagree. -#}

{#- One field: a 4-byte big-endian length and the value's text as UTF-8,
    or the length -1 alone for NULL. `value` is a text expression. -#}
{% macro seal_field(value) -%}
CASE WHEN ({{ value }}) IS NULL THEN '\xffffffff'::bytea ELSE pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to({{ value }}, 'UTF8'))) OPERATOR(pg_catalog.||) pg_catalog.convert_to({{ value }}, 'UTF8') END
{%- endmacro %}

{#- A row image (before, after): the field of its SHA-256, so that an
    erased value keeps the commitment recorded in seal_erasures (`x`, left
    joined on the event, its column `column`_sha256). -#}
{% macro seal_image(e, x, column) -%}
CASE WHEN {{ x }}.event_id IS NOT NULL
     THEN CASE WHEN {{ x }}.{{ column }}_sha256 IS NULL THEN '\xffffffff'::bytea
               ELSE '\x00000020'::bytea OPERATOR(pg_catalog.||) {{ x }}.{{ column }}_sha256 END
     WHEN {{ e }}.{{ column }} IS NULL THEN '\xffffffff'::bytea
     ELSE '\x00000020'::bytea OPERATOR(pg_catalog.||) pg_catalog.sha256(pg_catalog.convert_to({{ e }}.{{ column }}::text, 'UTF8')) END
{%- endmacro %}

{#- Microseconds since 1970-01-01 00:00 UTC, as bigint. -#}
{% macro seal_micros(value) -%}
(pg_catalog.extract('epoch', {{ value }}) OPERATOR(pg_catalog.*) 1000000)::bigint
{%- endmacro %}

{#- The SHA-256 of an event (alias `e`) without its id, which the block
    carries: every other column, in table order. -#}
{% macro seal_event_hash(e, x) -%}
pg_catalog.sha256(
    {{ seal_field(seal_micros(e ~ ".occurred_at") ~ "::text") }}
 || {{ seal_field(e ~ ".txid::text") }}
 || {{ seal_field(e ~ ".caused_by::text") }}
 || {{ seal_field(e ~ ".category::text") }}
 || {{ seal_field(e ~ ".admin::text") }}
 || {{ seal_field(e ~ ".ip_address::text") }}
 || {{ seal_field(e ~ ".client_addr::text") }}
 || {{ seal_field(e ~ ".action") }}
 || {{ seal_field(e ~ ".entity_type") }}
 || {{ seal_field(e ~ ".entity_id") }}
 || {{ seal_field(e ~ ".previous_entity_id") }}
 || {{ seal_field(e ~ ".actor_id") }}
 || {{ seal_field(e ~ ".actor_email") }}
 || {{ seal_field(e ~ ".actor_role") }}
 || {{ seal_field(e ~ ".user_agent") }}
 || {{ seal_field(e ~ ".request_id") }}
 || {{ seal_field(e ~ ".ip_address_raw") }}
 || {{ seal_field(e ~ ".db_user") }}
 || {{ seal_field(e ~ ".application_name") }}
 || {{ seal_field(e ~ ".changed_columns::text") }}
 || {{ seal_image(e, x, "before") }}
 || {{ seal_image(e, x, "after") }})
{%- endmacro %}

{#- The hash of block `block` following `prev`: its number, the times of
    its first and last event, then each event's id and hash in id order
    (`body`, the concatenation). -#}
{% macro seal_block_hash(prev, block, first_at, last_at, body) -%}
pg_catalog.sha256({{ prev }} || pg_catalog.int8send({{ block }})
                  || pg_catalog.int8send({{ seal_micros(first_at) }})
                  || pg_catalog.int8send({{ seal_micros(last_at) }}) || {{ body }})
{%- endmacro %}
