-- lock_log: take a table lock on the log or one of its partitions. Before
-- PostgreSQL 17 LOCK TABLE in any mode above ROW EXCLUSIVE needs UPDATE,
-- DELETE or TRUNCATE on the table, which nobody holds on the log, the owner
-- included; so the owner is granted UPDATE for the LOCK statement alone and
-- it is revoked at once. The lock stays until the transaction ends; the
-- privilege does not outlive this call, no other session ever sees it, and
-- the guard triggers refuse UPDATE anyway. Runs with the caller's rights;
-- called by maintain and apply_retention, which run as the owner.
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
