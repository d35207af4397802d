-- check_json_casts: true, or an error if a cast to json or jsonb of a
-- user-defined type runs a function owned by an ordinary role.
-- Capture runs with the owner's rights, and to_jsonb() converts a value of a
-- user-defined type through its cast to json or jsonb when one exists: such
-- a cast would run the function as the owner. Capture then refuses (and so
-- fails the write) rather than run it. Casts whose function belongs to a
-- superuser (extensions such as hstore) are trusted. Generated capture code
-- calls this only when a cheaper test has found a candidate cast.
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
