{#- The sealing encoding (docs/integrity.md#encoding), shared by seal()
    and verify_chain() so that the two cannot disagree. -#}

{#- A row image (before, after): the field of its SHA-256, so that an
    erased value keeps the commitment recorded in seal_erasures (`x`, left
    joined on the event, its column `column`_sha256). jsonb_send is a
    version byte, then the text of jsonb::text in the client encoding
    (UTF8 in the functions that use this). -#}
{% macro seal_image(e, x, column) -%}
CASE WHEN {{ x }}.event_id IS NOT NULL
     THEN CASE WHEN {{ x }}.{{ column }}_sha256 IS NULL THEN '\xffffffff'::bytea
               ELSE '\x00000020'::bytea OPERATOR(pg_catalog.||) {{ x }}.{{ column }}_sha256 END
     WHEN {{ e }}.{{ column }} IS NULL THEN '\xffffffff'::bytea
     ELSE '\x00000020'::bytea OPERATOR(pg_catalog.||) pg_catalog.sha256(pg_catalog.substring(pg_catalog.jsonb_send({{ e }}.{{ column }}), 2)) END
{%- endmacro %}

{#- Microseconds since 1970-01-01 00:00 UTC, as bigint. -#}
{% macro seal_micros(value) -%}
(pg_catalog.extract('epoch', {{ value }}) OPERATOR(pg_catalog.*) 1000000)::bigint
{%- endmacro %}

{#- The SHA-256 of an event (alias `e`) without its id, which the block
    carries: every other column, in table order. The fields of the text
    columns are those of a text[]'s binary form after its 20-byte header
    (dimensions, null flag, element type, length, lower bound): each
    element is a 4-byte length and its bytes in the client encoding, or -1
    for NULL. One array_send does in one call what a length, a conversion
    and a concatenation per field did in several (docs/performance.md);
    the functions that use this pin client_encoding to UTF8, so that the
    bytes are UTF-8 whatever the database encoding. -#}
{% macro seal_event_hash(e, x) -%}
pg_catalog.sha256(
    pg_catalog.substring(pg_catalog.array_send(ARRAY[
        {{ seal_micros(e ~ ".occurred_at") }}::text,
        {{ e }}.txid::text, {{ e }}.caused_by::text, {{ e }}.category::text, {{ e }}.admin::text,
        {{ e }}.ip_address::text, {{ e }}.client_addr::text, {{ e }}.action, {{ e }}.entity_type,
        {{ e }}.entity_id, {{ e }}.previous_entity_id, {{ e }}.actor_id, {{ e }}.actor_email,
        {{ e }}.actor_role, {{ e }}.user_agent, {{ e }}.request_id, {{ e }}.ip_address_raw,
        {{ e }}.db_user, {{ e }}.application_name, {{ e }}.changed_columns::text]::text[]), 21)
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
