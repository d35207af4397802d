-- inet_or_null: the inet value of a text, or NULL: a malformed
-- auditsql.ip_address must never fail a write. PL/pgSQL on purpose: a SQL
-- function body may be inlined and its cast folded at plan time, before any
-- validity test runs.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.inet_or_null(p_text text)
RETURNS inet
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
{%- if server_version_num >= 160000 %}
    IF pg_input_is_valid(p_text, 'inet') THEN
        RETURN p_text::inet;
    END IF;
    RETURN NULL;
{%- else %}
    RETURN p_text::inet;
EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
    RETURN NULL;
{%- endif %}
END
$fn$;
