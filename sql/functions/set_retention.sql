-- set_retention: set the retention policy (see retention_interval for what
-- p_policy may be) and return the interval it keeps events for. Idempotent:
-- setting the policy in force changes nothing; a change is recorded as a
-- `retention_policy_set` event (by the trigger on the retention table).
-- Runs with the caller's rights: the caller must be a member of the owner
-- role.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.set_retention(p_policy text)
RETURNS interval
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_keep   interval;
    v_name   text;
    v_was    {{ schema | ident }}.retention;
BEGIN
    IF NOT pg_has_role(current_user, {{ owner | literal }}, 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not set the retention policy: it must be a member of %', current_user, {{ owner | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_keep := {{ schema | ident }}.retention_interval(p_policy);
    v_name := CASE WHEN lower(btrim(p_policy)) IN ('financial', 'medical', 'saas')
                   THEN lower(btrim(p_policy)) ELSE 'custom' END;
    SELECT * INTO v_was FROM {{ schema | ident }}.retention FOR UPDATE;
    IF FOUND AND v_was.policy = v_name AND v_was.keep = v_keep
       AND v_was.keep::text = v_keep::text THEN
        RETURN v_keep;
    END IF;
    INSERT INTO {{ schema | ident }}.retention AS r (policy, keep)
    VALUES (v_name, v_keep)
    ON CONFLICT (singleton) DO UPDATE
        SET policy = excluded.policy, keep = excluded.keep,
            set_at = excluded.set_at, set_by = excluded.set_by;
    RETURN v_keep;
END
$fn$;
