{#- What this file defines besides the function it includes (see
    auditsql/manifest.py). -#}
{%- set defines = [
    {"kind": "event trigger", "name": ddl_trigger},
    {"kind": "event trigger", "name": drop_trigger},
] %}
-- The event triggers, made only when a superuser installs. They belong to
-- the database, not the schema, so their names carry the schema's.
CREATE SCHEMA IF NOT EXISTS {{ guard_schema | ident }};
COMMENT ON SCHEMA {{ guard_schema | ident }}
    IS {{ ("auditsql: the event trigger function guarding schema " ~ schema) | literal }};
REVOKE ALL ON SCHEMA {{ guard_schema | ident }} FROM PUBLIC;

{% include "functions/ddl_guard.sql" %}
REVOKE ALL ON FUNCTION {{ guard_schema | ident }}.ddl_guard() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS {{ ddl_trigger | ident }};
CREATE EVENT TRIGGER {{ ddl_trigger | ident }} ON ddl_command_end
    EXECUTE FUNCTION {{ guard_schema | ident }}.ddl_guard();
ALTER EVENT TRIGGER {{ ddl_trigger | ident }} ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER {{ ddl_trigger | ident }} IS 'auditsql: refuses DDL that would stop or weaken auditing';

DROP EVENT TRIGGER IF EXISTS {{ drop_trigger | ident }};
CREATE EVENT TRIGGER {{ drop_trigger | ident }} ON sql_drop
    EXECUTE FUNCTION {{ guard_schema | ident }}.ddl_guard();
ALTER EVENT TRIGGER {{ drop_trigger | ident }} ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER {{ drop_trigger | ident }} IS 'auditsql: refuses drops that would stop or weaken auditing';
