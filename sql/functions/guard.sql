-- guard: refuses UPDATE, DELETE and TRUNCATE of the log, whoever asks.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'auditsql: the audit log is append-only; % on %.% is not allowed',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit events are removed only by the retention policy.';
END
$fn$;
