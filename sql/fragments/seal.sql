{#- The sealing encoding (docs/integrity.md#encoding), shared by seal(),
    verify_chain() and erase() so that they cannot disagree. -#}

{#- The digest of an event's images: SHA-256 over the fields of before and
    after (see seal_event_hash for fields), or the digest erase() recorded
    (`x`, seal_erasures left joined on the event) in place of the values it
    replaced. One hash for both images, not one each: a SHA-256 call costs
    about as much to set up as to hash an image (docs/performance.md). The
    array's binary form after its 20-byte header is exactly the two fields;
    jsonb::text is what jsonb_send writes. -#}
{% macro seal_images(e, x) -%}
COALESCE({{ x }}.images_sha256,
         pg_catalog.sha256(pg_catalog.substring(pg_catalog.array_send(ARRAY[{{ e }}.before::text, {{ e }}.after::text]), 21)))
{%- endmacro %}

{#- The same digest where client_encoding is not pinned to UTF8 (erase()):
    the fields spelled out, each value converted to UTF-8 itself. The tests
    that erase sealed events and verify them hold the two spellings equal. -#}
{% macro seal_field_utf8(value) -%}
CASE WHEN {{ value }} IS NULL THEN '\xffffffff'::bytea
     ELSE pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to({{ value }}::text, 'UTF8')))
          OPERATOR(pg_catalog.||) pg_catalog.convert_to({{ value }}::text, 'UTF8') END
{%- endmacro %}
{% macro seal_images_utf8(e) -%}
pg_catalog.sha256(({{ seal_field_utf8(e ~ ".before") }}) OPERATOR(pg_catalog.||) ({{ seal_field_utf8(e ~ ".after") }}))
{%- endmacro %}

{#- Microseconds since 1970-01-01 00:00 UTC, as bigint. -#}
{% macro seal_micros(value) -%}
(pg_catalog.extract('epoch', {{ value }}) OPERATOR(pg_catalog.*) 1000000)::bigint
{%- endmacro %}

{#- The SHA-256 of an event (alias `e`) without its id, which the block
    carries: every column but the images, in table order, then the images'
    digest. The fields of the text columns are those of a text[]'s binary
    form after its 20-byte header (dimensions, null flag, element type,
    length, lower bound): each element is a 4-byte length and its bytes in
    the client encoding, or -1 for NULL. One array_send does in one call
    what a length, a conversion and a concatenation per field did in
    several (docs/performance.md); the functions that use this pin
    client_encoding to UTF8, so that the bytes are UTF-8 whatever the
    database encoding. -#}
{% macro seal_event_hash(e, x) -%}
pg_catalog.sha256(
    pg_catalog.substring(pg_catalog.array_send(ARRAY[
        {{ seal_micros(e ~ ".occurred_at") }}::text,
        {{ e }}.txid::text, {{ e }}.caused_by::text, {{ e }}.category::text, {{ e }}.admin::text,
        {{ e }}.ip_address::text, {{ e }}.client_addr::text, {{ e }}.action, {{ e }}.entity_type,
        {{ e }}.entity_id, {{ e }}.previous_entity_id, {{ e }}.actor_id, {{ e }}.actor_email,
        {{ e }}.actor_role, {{ e }}.user_agent, {{ e }}.request_id, {{ e }}.ip_address_raw,
        {{ e }}.db_user, {{ e }}.application_name, {{ e }}.changed_columns::text]::text[]), 21)
 || {{ seal_images(e, x) }})
{%- endmacro %}

{#- The ids of a block, from its multirange `ids`: the number of runs of
    consecutive ids, then each run's first id and the id after its last,
    all 8-byte big-endian. -#}
{% macro seal_runs(ids) -%}
(SELECT pg_catalog.int8send(pg_catalog.count(*))
        || COALESCE(pg_catalog.string_agg(pg_catalog.int8send(pg_catalog.lower(r.span))
                                          || pg_catalog.int8send(pg_catalog.upper(r.span)),
                                          ''::bytea ORDER BY pg_catalog.lower(r.span)), ''::bytea)
 FROM pg_catalog.unnest({{ ids }}) AS r(span))
{%- endmacro %}

{#- The hash of block `block` following `prev`: its number, the times of
    its first and last event, the ids it covers (`ids`), then its events'
    hashes in id order (`hashes`, their concatenation). The ids and the
    hashes are kept apart, not interleaved, so that sealing aggregates the
    hashes in one sorted pass. -#}
{% macro seal_block_hash(prev, block, first_at, last_at, ids, hashes) -%}
pg_catalog.sha256({{ prev }} || pg_catalog.int8send({{ block }})
                  || pg_catalog.int8send({{ seal_micros(first_at) }})
                  || pg_catalog.int8send({{ seal_micros(last_at) }})
                  || {{ seal_runs(ids) }} || {{ hashes }})
{%- endmacro %}
