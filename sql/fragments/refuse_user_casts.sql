{#- Capture runs with the owner's rights, and to_jsonb() converts a value of
    a user-defined type through its cast to json or jsonb when one exists.
    Such a cast, written by an ordinary role, would run as the owner: refuse
    to capture (and so fail the write) rather than run it. Casts whose
    function belongs to a superuser (extensions such as hstore) are trusted.
    The first test is a cheap scan of pg_cast that is false in almost every
    database; only when it is true is the owner of each cast looked up. #}
    IF EXISTS (SELECT FROM pg_cast AS c
               WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype)
                 AND c.castsource >= 16384) THEN
        IF EXISTS (SELECT FROM pg_cast AS c
                   JOIN pg_proc AS p ON p.oid = c.castfunc
                   JOIN pg_roles AS r ON r.oid = p.proowner
                   WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype)
                     AND c.castsource >= 16384
                     AND NOT r.rolsuper) THEN
            RAISE EXCEPTION 'auditsql: refusing to capture %: a cast to json or jsonb owned by an ordinary role exists, and capture would run it with audit rights', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Drop the cast, or have a superuser own its function.';
        END IF;
    END IF;
