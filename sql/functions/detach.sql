-- detach: stop auditing a table. Its capture function goes, and every
-- capture trigger with it; the events already written stay in the log, and
-- the detach itself is recorded as a `detached` event. Idempotent:
-- detaching a table that is not audited does nothing. A table dropped while
-- audited is detached by its oid: audit.detach(16384). Then revokes the
-- SELECT and USAGE that attach granted the owner role, and only those (with
-- the caller's rights: the table's owner granted them).
-- Who may: a member of the operator role who owns the table (anyone in the
-- operator role, for a table dropped since).
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
