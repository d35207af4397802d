{#- The catalog query `auditsql verify` and `auditsql status` run (see
    catalog.sql); run it after settings.sql, in the same transaction. -#}
{% from "fingerprint/catalog.sql" import catalog_objects %}
{{ catalog_objects(schema, guard_schema) }}
