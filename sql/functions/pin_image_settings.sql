-- pin_image_settings: pin the settings that shape the text of row images,
-- for the rest of the capture call, and return what they were (for
-- restore_image_settings). A session's choices must not round floats
-- (extra_float_digits), flip the sign of an interval's time part on the way
-- back (IntervalStyle), or change how bytea is spelled (bytea_output).
-- Capture calls it only when a setting differs, which in the usual case
-- costs three comparisons; a SET clause on the capture function would cost
-- every call a save and a restore. Values are set transaction-locally.
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
