-- record_ddl: record, as an `audit_ddl` system event, DDL that a superuser
-- or an audit administrator ran on auditing itself (a guard disabled, a
-- capture trigger dropped, an audit object changed: see ddl_guard, which
-- calls it in the same transaction). The event names the command and the
-- objects; db_user and the context say who.
--   p_command  the command tag, such as ALTER TABLE
--   p_objects  what it did, one entry per object, as ddl_guard words it
-- Only the admin role may call it (superusers may anyway): it writes to the
-- log.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.record_ddl(p_command text, p_objects text[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM {{ schema | ident }}.record_system_event('audit_ddl', NULL, NULL,
        jsonb_build_object('command', left(p_command, 1024), 'objects', to_jsonb(p_objects),
                           'role', current_setting('role')));
END
$fn$;
