-- set_retention: sets the retention policy. Shortening it, or going under a
-- year, needs a flag, so that a slip of the keyboard ('7' for '7 years', saas
-- for financial) is refused before the next run drops what it must not.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.set_retention(
    p_policy       text,
    p_under_a_year boolean DEFAULT false,
    p_shorten      boolean DEFAULT false)
RETURNS interval
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
AS $fn$
DECLARE
    v_change record;
    v_was    {{ schema | ident }}.retention;
    v_found  boolean;
BEGIN
    -- As session_user: current_user is the owner role here.
    IF NOT pg_has_role(session_user, {{ admin | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not set the retention policy: it must be a member of %', session_user, {{ admin | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Lock the policy in force first, so that it is the one judged against.
    SELECT * INTO v_was FROM {{ schema | ident }}.retention FOR UPDATE;
    v_found := FOUND;
    SELECT * INTO v_change FROM {{ schema | ident }}.retention_change(p_policy);
    -- The policy in force, set again, needs no flag.
    IF v_found AND v_was.policy = v_change.policy AND v_was.keep = v_change.keep
       AND v_was.keep::text = v_change.keep::text THEN
        RETURN v_change.keep;
    END IF;
    IF v_change.under_a_year AND NOT coalesce(p_under_a_year, false) THEN
        RAISE EXCEPTION 'auditsql: retention policy % keeps events for less than a year; pass p_under_a_year => true if that is meant', quote_literal(p_policy)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('audit.retention_preview(%L::interval) shows what the next retention run would then remove.', v_change.keep::text);
    END IF;
    IF v_change.shortens AND NOT coalesce(p_shorten, false) THEN
        RAISE EXCEPTION 'auditsql: retention policy % keeps events for less time than the policy in force, % (%); pass p_shorten => true if that is meant',
            quote_literal(p_policy), v_was.policy, v_was.keep
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('audit.retention_preview(%L::interval) shows what the next retention run would then remove.', v_change.keep::text);
    END IF;
    INSERT INTO {{ schema | ident }}.retention AS r (policy, keep)
    VALUES (v_change.policy, v_change.keep)
    ON CONFLICT (singleton) DO UPDATE
        SET policy = excluded.policy, keep = excluded.keep,
            set_at = excluded.set_at, set_by = excluded.set_by;
    RETURN v_change.keep;
END
$fn$;
