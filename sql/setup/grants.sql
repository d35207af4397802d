-- Grants. PUBLIC may use the schema only to reach set_actor and set_request;
-- it holds nothing on tables, sequences or any other function. The reader
-- role may read the log and the list of audited tables. Nobody, the owner
-- included, holds UPDATE, DELETE or TRUNCATE on the log.
REVOKE ALL ON ALL TABLES IN SCHEMA {{ schema | ident }} FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {{ schema | ident }} FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {{ schema | ident }} FROM PUBLIC;
GRANT USAGE ON SCHEMA {{ schema | ident }} TO PUBLIC;
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.set_actor(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.set_request(text, text, text) TO PUBLIC;

GRANT USAGE ON SCHEMA {{ schema | ident }} TO {{ reader | ident }};
GRANT SELECT ON {{ schema | ident }}.events, {{ schema | ident }}.tables,
                {{ schema | ident }}.installation, {{ schema | ident }}.retention,
                {{ schema | ident }}.legal_holds, {{ schema | ident }}.events_default
             TO {{ reader | ident }};
-- The reader may list the log's partitions (catalog only), for status and
-- health checks.
GRANT EXECUTE ON FUNCTION {{ schema | ident }}.event_partitions() TO {{ reader | ident }};

REVOKE UPDATE, DELETE, TRUNCATE ON {{ schema | ident }}.events, {{ schema | ident }}.events_default
    FROM {{ owner | ident }};
