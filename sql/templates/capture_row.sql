{#- The body of a capture function for row capture (an AFTER ... FOR EACH
    ROW trigger), as a format() template whose slots audit.capture_source()
    fills (capture_slots.sql); attach wraps it in CREATE FUNCTION ...
    SECURITY DEFINER AS '<body>'. capture_statement.sql is the other mode;
    capture_macros.sql holds what both share.

    Generated per table so that the columns, the key and the policies are
    known in advance: the comparison of old and new values is a few jsonb
    lookups instead of a set-returning subquery, a policy the table does not
    use costs nothing, and each write is one INSERT ... SELECT (see
    docs/performance.md). -#}
{%- from "templates/capture_slots.sql" import slot -%}
{%- from "templates/capture_macros.sql" import declarations, truncate, prologue, epilogue, row_context,
    json_casts_checked, generic_before, insert_created, insert_updated, insert_admin_updated,
    insert_deleted with context -%}
{#- Whether the row has only the columns of attach time is asked of its
    image (slot known), where it must be: see capture_source. -#}
{%- set row_before -%}
CASE WHEN {{ slot('known') }}
                        THEN {{ slot('diff') }}
                        ELSE {{ generic_before }} END
{%- endset -%}
{{ declarations() }}
BEGIN
    -- UPDATE first: the common case of OLTP tests one condition, TRUNCATE
    -- second: what it records is capture_truncate's to decide.
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        {{ prologue() | indent(4) }}
        IF NOT (OLD OPERATOR(pg_catalog.*=) NEW) THEN
            IF v_admin THEN
                {{ insert_admin_updated(row_context, slot('entity_type'), none) }}
                FROM (SELECT pg_catalog.to_jsonb(OLD) AS oj, pg_catalog.to_jsonb(NEW) AS nj
                      WHERE {{ json_casts_checked }}
                      OFFSET 0) AS s{{ slot('admin_on_change') }};
            ELSE
                {{ insert_updated(row_context, slot('entity_type'), row_before) }}
                FROM (SELECT pg_catalog.to_jsonb(OLD){{ slot('image_suffix') }} AS oj,
                             pg_catalog.to_jsonb(NEW){{ slot('image_suffix') }} AS nj
                      WHERE {{ json_casts_checked }}
                      OFFSET 0) AS s
                WHERE {{ slot('update_filter') }}{{ slot('on_change') }};
            END IF;
        END IF;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        {{ truncate() }}
    ELSE
        {{ prologue() | indent(4) }}
        IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
            {{ insert_created(row_context, slot('entity_type')) | indent(4) }}
            FROM (SELECT pg_catalog.to_jsonb(NEW){{ slot('image_suffix') }} AS nj
                  WHERE {{ json_casts_checked }}
                  OFFSET 0) AS s;
        ELSE
            {{ insert_deleted(row_context, slot('entity_type')) | indent(4) }}
            FROM (SELECT pg_catalog.to_jsonb(OLD){{ slot('image_suffix') }} AS oj
                  WHERE {{ json_casts_checked }}
                  OFFSET 0) AS s;
        END IF;
    END IF;

    {{ epilogue() }}
