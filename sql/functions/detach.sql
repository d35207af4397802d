-- detach: stops auditing a table. Not SECURITY DEFINER: the REVOKEs run with
-- the rights of the table's owner, who granted them at attach.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.detach(p_table regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_statement text;
BEGIN
    IF NOT pg_has_role(current_user, {{ operator | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not detach tables: it must be a member of %', current_user, {{ operator | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_statement IN SELECT * FROM {{ schema | ident }}.detach_prepare(p_table) LOOP
        EXECUTE v_statement;
    END LOOP;
END
$fn$;
