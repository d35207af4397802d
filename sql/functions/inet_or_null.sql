-- inet_or_null: the inet value of p_text, or NULL when p_text is NULL or not
-- a valid address. Capture uses it so that a malformed auditsql.ip_address
-- never aborts the user's transaction (the raw text goes to ip_address_raw).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.inet_or_null(p_text text)
RETURNS inet
{%- if server_version_num >= 160000 %}
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN pg_catalog.pg_input_is_valid(p_text, 'inet')
                THEN p_text::pg_catalog.inet END
$fn$;
{%- else %}
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN p_text::pg_catalog.inet;
EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
    RETURN NULL;
END
$fn$;
{%- endif %}
