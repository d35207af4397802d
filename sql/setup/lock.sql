-- Locks, when auditsql is installed already: every audited table, then the
-- log, before anything changes. Install re-creates the log's triggers,
-- upgrade attaches tables again and a step may drop their triggers; taking
-- the locks first, in the order a writer takes them (its table, then the
-- log its capture writes to), keeps install from deadlocking with writers.
-- SHARE ROW EXCLUSIVE keeps writers out and lets readers in. With the lock
-- timeout set above, install waits for a long transaction only that long,
-- holding up the writers queued behind it, then fails; the command line
-- tries again (auditsql/installer.py). A table the installing role may not
-- lock is locked when something changes it, if ever.
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
