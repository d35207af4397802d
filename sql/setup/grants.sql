-- Who may do what (docs/sql.md#privileges, docs/security.md).
REVOKE ALL ON ALL TABLES IN SCHEMA {{ schema | ident }} FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {{ schema | ident }} FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {{ schema | ident }} FROM PUBLIC;
{#- What PUBLIC is granted: (kind, name, argument types). The statements
    below are rendered from this list, and `auditsql verify`
    (privileges.public) allows PUBLIC exactly what it names (see
    auditsql/manifest.py). -#}
{%- set public_grants = [
    ("schema", schema, none),
    ("function", "set_actor", "text, text, text"),
    ("function", "set_request", "text, text, text"),
    ("function", "set_context", "text, text, text, text, text, text"),
    ("function", "push_context", "text, text, text, text, text, text"),
    ("function", "pop_context", ""),
    ("function", "settings_context", ""),
    ("function", "current_context", ""),
    ("function", "attach", "regclass, text[], text, text[], text[], jsonb, boolean, boolean, boolean"),
    ("function", "detach", "regclass"),
    ("function", "erase", "text, text, text[], text"),
    ("function", "refresh", "regclass"),
] %}
{%- for kind, name, arguments in public_grants %}
{%- if kind == "schema" %}
GRANT USAGE ON SCHEMA {{ name | ident }} TO PUBLIC;
{%- else %}
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.{{ name | ident }}({{ arguments }}) TO PUBLIC;
{%- endif %}
{%- endfor %}

GRANT USAGE ON SCHEMA {{ schema | ident }} TO {{ reader | ident }};
-- status compares each capture function with what attach would generate now.
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.capture_source(regclass),
                          {{ schema | ident }}.key_expression(text, text[]) TO {{ reader | ident }};
GRANT SELECT ON {{ schema | ident }}.events, {{ schema | ident }}.history, {{ schema | ident }}.envelope,
                {{ schema | ident }}.changes,
                {{ schema | ident }}.tables, {{ schema | ident }}.settings,
                {{ schema | ident }}.installation, {{ schema | ident }}.retention,
                {{ schema | ident }}.legal_holds, {{ schema | ident }}.events_default,
                {{ schema | ident }}.seal_blocks, {{ schema | ident }}.seal_head,
                {{ schema | ident }}.seal_erasures, {{ schema | ident }}.seal_retired
             TO {{ reader | ident }};
-- Recomputes the chain from what a reader may read.
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.verify_chain() TO {{ reader | ident }};
-- For status and health checks; it reads the catalog only.
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.event_partitions() TO {{ reader | ident }};

GRANT USAGE ON SCHEMA {{ schema | ident }} TO {{ writer | ident }};
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.log_event(text, text, text, jsonb) TO {{ writer | ident }};

GRANT EXECUTE ON FUNCTION
    {{ schema | ident }}.attach_prepare(regclass, text[], text, text[], text[], jsonb, boolean, boolean),
    {{ schema | ident }}.attach_complete(regclass, boolean, oid[]),
    {{ schema | ident }}.detach_prepare(regclass)
    TO {{ operator | ident }};
-- What the command line reads to find the installation and its tables.
GRANT SELECT ON {{ schema | ident }}.installation, {{ schema | ident }}.tables
    TO {{ operator | ident }};

-- What writes runs as the owner role and checks the admin role itself; the
-- previews read as the caller, a reader (roles.sql).
GRANT EXECUTE ON FUNCTION
    {{ schema | ident }}.set_retention(text, boolean, boolean),
    {{ schema | ident }}.retention_change(text),
    {{ schema | ident }}.retention_interval(text),
    {{ schema | ident }}.retention_cutoff(interval, timestamptz),
    {{ schema | ident }}.retention_due(interval, timestamptz, boolean, boolean),
    {{ schema | ident }}.retention_preview(interval, timestamptz, boolean),
    {{ schema | ident }}.apply_retention(timestamptz),
    {{ schema | ident }}.maintain(integer),
    {{ schema | ident }}.maintain_preview(integer),
    {{ schema | ident }}.seal(integer),
    {{ schema | ident }}.place_hold(text, text, text, boolean),
    {{ schema | ident }}.release_hold(text, text, text),
    {{ schema | ident }}.configure(text[], boolean),
    {{ schema | ident }}.record_ddl(text, text[])
    TO {{ admin | ident }};
-- Entity ids read as the log spells them: for whoever reads the log.
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.normalize_entity_id(text, text) TO {{ reader | ident }};
-- The reading functions run with the caller's rights, over what a reader
-- may select.
GRANT EXECUTE ON FUNCTION
    {{ schema | ident }}.audited_entity(regclass, text),
    {{ schema | ident }}.entity_history(regclass, text),
    {{ schema | ident }}.row_at(regclass, text, timestamptz),
    {{ schema | ident }}.table_at(regclass, timestamptz),
    {{ schema | ident }}.request_events(text),
    {{ schema | ident }}.transaction_events(bigint),
    {{ schema | ident }}.actor_events(text, timestamptz, timestamptz, integer)
    TO {{ reader | ident }};
-- A snapshot is taken by the table's owner, who must attach it too; the
-- events are written as the owner role (snapshot_rows).
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.audited_entity(regclass, text),
                          {{ schema | ident }}.snapshot_rows(regclass, jsonb),
                          {{ schema | ident }}.snapshot_batch(regclass, jsonb, integer)
    TO {{ operator | ident }};
GRANT EXECUTE ON PROCEDURE {{ schema | ident }}.snapshot(regclass, integer) TO {{ operator | ident }};

-- The owner role created the log, and so would hold these.
REVOKE UPDATE, DELETE, TRUNCATE ON {{ schema | ident }}.events, {{ schema | ident }}.events_default
    FROM {{ owner | ident }};
REVOKE UPDATE, DELETE, TRUNCATE ON {{ schema | ident }}.seal_blocks, {{ schema | ident }}.seal_erasures,
                                   {{ schema | ident }}.seal_retired
    FROM {{ owner | ident }};
REVOKE DELETE, TRUNCATE ON {{ schema | ident }}.seal_head FROM {{ owner | ident }};
