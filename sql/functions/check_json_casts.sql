-- check_json_casts: true, or an error when a cast to json or jsonb of a
-- user-defined type runs a function an ordinary role owns. to_jsonb() calls
-- such a cast, and capture runs as the owner role: that role's code would
-- run with audit rights. A superuser's casts (extensions') are trusted.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.check_json_casts()
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cast text;
BEGIN
    SELECT format('%s -> %s (function %s)', c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure)
      INTO v_cast
    FROM pg_cast AS c
    JOIN pg_proc AS p ON p.oid = c.castfunc
    JOIN pg_roles AS r ON r.oid = p.proowner
    WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype)
      AND c.castsource >= 16384
      AND NOT r.rolsuper
    LIMIT 1;
    IF v_cast IS NOT NULL THEN
        RAISE EXCEPTION 'auditsql: refusing to capture: the cast % is owned by an ordinary role, and capture would run it with audit rights', v_cast
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the cast, or have a superuser own its function.';
    END IF;
    RETURN true;
END
$fn$;
