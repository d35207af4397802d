-- current_context: the context in force, as every event records it: the
-- setting auditsql.context when it is set in the transaction, else the six
-- settings (settings_context). Capture inlines the same test.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.current_context()
RETURNS {{ schema | ident }}.context
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_context text := current_setting('auditsql.context', true);
BEGIN
    IF v_context <> '' THEN
        RETURN v_context::{{ schema | ident }}.context;
    END IF;
    RETURN {{ schema | ident }}.settings_context();
END
$fn$;
