-- record_ddl: records, for ddl_guard, DDL on auditing itself as an
-- `audit_ddl` event. Executable by the admin role only: it writes the log.
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
