-- pin_image_settings: pins the settings that shape row images
-- (fragments/image_settings.sql) and returns what they were. Capture calls
-- it only when one differs: a SET clause on the capture function would cost
-- every call a save and a restore.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.pin_image_settings()
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was text[] := ARRAY[current_setting('extra_float_digits'),
                          current_setting('IntervalStyle'),
                          current_setting('bytea_output')];
BEGIN
    PERFORM set_config('extra_float_digits', '1', true),
            set_config('IntervalStyle', 'postgres', true),
            set_config('bytea_output', 'hex', true);
    RETURN v_was;
END
$fn$;
