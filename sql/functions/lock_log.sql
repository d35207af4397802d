-- lock_log: LOCK TABLE on the log or a partition. Before PostgreSQL 17, LOCK
-- TABLE above ROW EXCLUSIVE needs UPDATE, DELETE or TRUNCATE, which nobody
-- holds on the log: the owner role gets UPDATE for the LOCK statement alone.
-- No other session ever sees the grant, and the guards refuse UPDATE anyway.
-- Not SECURITY DEFINER: its callers run as the owner role.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.lock_log(p_table regclass, p_mode text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    EXECUTE format('GRANT UPDATE ON %s TO %I', p_table, {{ owner | literal }});
    CASE p_mode
        WHEN 'SHARE UPDATE EXCLUSIVE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', p_table);
        WHEN 'SHARE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN SHARE MODE', p_table);
        WHEN 'SHARE ROW EXCLUSIVE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', p_table);
        WHEN 'ACCESS EXCLUSIVE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', p_table);
    END CASE;
    EXECUTE format('REVOKE UPDATE ON %s FROM %I', p_table, {{ owner | literal }});
END
$fn$;
