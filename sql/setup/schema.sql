-- The audit schema; what PUBLIC may use in it is in setup/grants.sql.
CREATE SCHEMA IF NOT EXISTS {{ schema | ident }} AUTHORIZATION {{ owner | ident }};
COMMENT ON SCHEMA {{ schema | ident }} IS 'auditsql: append-only audit log';
