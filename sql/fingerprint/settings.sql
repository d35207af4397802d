{#- SET LOCAL statements fixing how definitions are printed, for the catalog
    query of query.sql (see catalog.sql). -#}
{% from "fingerprint/catalog.sql" import pinned_settings %}
{{ pinned_settings('local') }}
