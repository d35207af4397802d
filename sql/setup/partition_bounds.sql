-- Partitions attached by an earlier version kept the CHECK constraint that
-- create_partition gives them; drop it (see functions/drop_bound_check.sql).
DO $bounds$
DECLARE
    v_partition regclass;
BEGIN
    FOR v_partition IN
        SELECT i.inhrelid::regclass
        FROM pg_inherits AS i
        WHERE i.inhparent = {{ ((schema | ident) ~ '.events') | literal }}::regclass
    LOOP
        PERFORM {{ schema | ident }}.drop_bound_check(v_partition);
    END LOOP;
END
$bounds$;
