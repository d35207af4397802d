-- restore_image_settings: puts back what pin_image_settings found.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.restore_image_settings(p_was text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM set_config('extra_float_digits', p_was[1], true),
            set_config('IntervalStyle', p_was[2], true),
            set_config('bytea_output', p_was[3], true);
END
$fn$;
