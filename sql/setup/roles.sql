-- Roles: the owner holds every audit object and cannot log in; the reader may
-- read the log. The installing role becomes a member of the owner so that it
-- can create objects on its behalf (on PostgreSQL 16+ a CREATEROLE role must
-- grant itself that membership explicitly).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ owner | literal }}) THEN
        CREATE ROLE {{ owner | ident }} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ reader | literal }}) THEN
        CREATE ROLE {{ reader | ident }} NOLOGIN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, {{ owner | literal }}, 'USAGE') THEN
        GRANT {{ owner | ident }} TO CURRENT_USER;
    END IF;
END
$roles$;
COMMENT ON ROLE {{ owner | ident }} IS 'auditsql: owns the audit schema; NOLOGIN';
COMMENT ON ROLE {{ reader | ident }} IS 'auditsql: may read the audit log';
