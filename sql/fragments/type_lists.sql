{#- The built-in types that capture treats apart, in named lists. Each list
    names its types as format_type() prints them; type_oids() renders a list
    as the array literal of their oids, which are fixed for built-in types.
    tests/sql/test_capture.py checks every name against its oid on a real
    server. -#}

{%- set builtin_type_oids = {
    'boolean': 16, 'bytea': 17, '"char"': 18, 'name': 19, 'bigint': 20, 'smallint': 21,
    'integer': 23, 'text': 25, 'oid': 26, 'json': 114, 'xml': 142, 'cidr': 650,
    'macaddr8': 774, 'macaddr': 829, 'inet': 869, 'character': 1042,
    'character varying': 1043, 'date': 1082, 'time without time zone': 1083,
    'timestamp without time zone': 1114, 'timestamp with time zone': 1184,
    'interval': 1186, 'time with time zone': 1266, 'bit': 1560, 'bit varying': 1562,
    'numeric': 1700, 'uuid': 2950, 'jsonb': 3802,
} %}

{#- The types a cast to which may run code while a row image is built:
    to_jsonb() calls a cast to json or jsonb of a column's type, if there is
    one. Capture checks those casts first (check_json_casts). -#}
{% set json_types = ['json', 'jsonb'] %}

{#- Types whose values are equal exactly when their JSON images are equal
    as jsonb: those that become JSON strings, booleans and integers. Other
    numbers compare by value as jsonb (1.0 = 1.00, -0 = 0), and so may values
    nested in arrays, json or rows: capture compares those by their JSON
    text. -#}
{% set jsonb_comparable_types = [
    'boolean', 'bytea', '"char"', 'name', 'bigint', 'smallint', 'integer', 'text', 'oid',
    'cidr', 'macaddr', 'inet', 'character', 'character varying', 'date',
    'time without time zone', 'timestamp without time zone', 'timestamp with time zone',
    'interval', 'time with time zone', 'uuid'] %}

{#- Types whose JSON image does not depend on the row-image settings
    (fragments/image_settings.sql), which shape only the text of floats and
    of what is built on them (geometric types), of intervals and of bytea.
    Capture pins those settings unless every column is of one of these types
    (or an enum, or an array or a domain of one). -#}
{% set setting_free_types = [
    'boolean', '"char"', 'name', 'bigint', 'smallint', 'integer', 'text', 'oid', 'json',
    'xml', 'cidr', 'macaddr8', 'macaddr', 'inet', 'character', 'character varying', 'date',
    'time without time zone', 'timestamp without time zone', 'timestamp with time zone',
    'time with time zone', 'bit', 'bit varying', 'numeric', 'uuid', 'jsonb'] %}

{#- Statement capture compares the columns of these types as they are, with
    their own equality, which is equality of their JSON image: no JSON value
    is taken apart for them. -#}
{% set typed_types = [
    'boolean', '"char"', 'bigint', 'smallint', 'integer', 'oid', 'date',
    'timestamp without time zone', 'timestamp with time zone', 'uuid'] %}

{#- The same for these string types, under a deterministic collation only:
    a nondeterministic one calls different strings equal. -#}
{% set typed_collated_types = ['name', 'text', 'character varying'] %}

{#- Statement capture compares the columns of these types by their text:
    numeric equality calls 1.0 and 1.00 equal, their JSON images differ. -#}
{% set typed_text_types = ['numeric'] %}

{#- The oids of the types `types` (names from builtin_type_oids), in
    increasing order, as the text of an SQL array literal: '{114,3802}'.
    The caller adds the cast. -#}
{% macro type_oids(types) -%}
{%- set found = namespace(oids=[]) -%}
{%- for name in types -%}
{%- set found.oids = found.oids + [builtin_type_oids[name]] -%}
{%- endfor -%}
'{ {{- found.oids | sort | join(',') -}} }'
{%- endmacro %}
