-- Locks every audited table, then the log, before anything changes: in the
-- order a writer takes them (its table, then the log), so that install
-- cannot deadlock with writers. With lock_timeout, install waits for a long
-- transaction only that long, then fails and the command line tries again
-- (auditsql/installer.py). A table the installing role may not lock is
-- locked when something changes it, if ever.
DO $lock$
DECLARE
    v_table regclass;
BEGIN
    IF pg_catalog.to_regclass({{ ((schema | ident) ~ '.tables') | literal }}) IS NULL
       OR NOT pg_catalog.has_table_privilege({{ ((schema | ident) ~ '.tables') | literal }}, 'SELECT') THEN
        RETURN;
    END IF;
    FOR v_table IN
        SELECT c.oid::regclass
        FROM {{ schema | ident }}.tables AS t
        JOIN pg_catalog.pg_class AS c ON c.oid = t.relid
        ORDER BY t.relid
    LOOP
        IF pg_catalog.has_table_privilege(v_table, 'UPDATE, DELETE, TRUNCATE') THEN
            EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', v_table);
        END IF;
    END LOOP;
    IF pg_catalog.to_regclass({{ ((schema | ident) ~ '.events') | literal }}) IS NOT NULL
       AND pg_catalog.has_table_privilege({{ ((schema | ident) ~ '.events') | literal }}, 'UPDATE, DELETE, TRUNCATE') THEN
        LOCK TABLE {{ schema | ident }}.events IN SHARE ROW EXCLUSIVE MODE;
    END IF;
END
$lock$;
