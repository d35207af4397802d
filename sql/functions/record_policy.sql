-- record_policy: trigger on retention recording every change of the policy,
-- by hand too; a policy can be changed, never removed.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.record_policy()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
AS $fn$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'auditsql: the retention policy can be changed but not removed: % on %.% is not allowed',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Set another policy with auditsql retention set POLICY.';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.policy = NEW.policy AND OLD.keep::text = NEW.keep::text THEN
        RETURN NULL;
    END IF;
    PERFORM {{ schema | ident }}.record_system_event('retention_policy_set',
        format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), NULL,
        jsonb_build_object('policy', NEW.policy, 'keep', NEW.keep::text,
                           'previous', CASE WHEN TG_OP = 'UPDATE' THEN
                               jsonb_build_object('policy', OLD.policy, 'keep', OLD.keep::text,
                                                  'set_at', OLD.set_at, 'set_by', OLD.set_by) END));
    RETURN NULL;
END
$fn$;
