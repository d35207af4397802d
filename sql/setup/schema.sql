-- The audit schema. Roles may look up the context helpers in it (USAGE), but
-- PUBLIC holds no privilege on any table, sequence or other function.
CREATE SCHEMA IF NOT EXISTS {{ schema | ident }} AUTHORIZATION {{ owner | ident }};
COMMENT ON SCHEMA {{ schema | ident }} IS 'auditsql: append-only audit log';
