-- snapshot: records every row of an audited table as a snapshot event, one
-- committed batch at a time, so that row_at and table_at know the rows no
-- write has touched since the table was attached. A procedure, for the
-- COMMIT after each batch, and so without a SET clause (PostgreSQL refuses
-- transaction control under one): every name is qualified instead.
CREATE OR REPLACE PROCEDURE {{ schema | ident }}.snapshot(
    p_table      regclass,
    p_batch_size integer DEFAULT 10000)
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_after jsonb;
BEGIN
    LOOP
        SELECT b.next_after INTO v_after
        FROM {{ schema | ident }}.snapshot_batch(p_table, v_after, p_batch_size) AS b;
        COMMIT;
        EXIT WHEN v_after IS NULL;
    END LOOP;
END
$fn$;
REVOKE ALL ON PROCEDURE {{ schema | ident }}.snapshot(regclass, integer) FROM PUBLIC;
