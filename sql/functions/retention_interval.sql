-- retention_interval: the interval a retention policy keeps events for.
--   p_policy  financial (7 years), medical (5 years), saas (3 years), or any
--             PostgreSQL interval such as '2 years' or '18 months'
-- Refused, with a sentence saying why: anything else, an interval that is
-- not longer than zero, and one so long that now() minus it is out of range.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_interval(p_policy text)
RETURNS interval
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_keep interval;
BEGIN
    CASE lower(btrim(coalesce(p_policy, '')))
        WHEN 'financial' THEN RETURN interval '7 years';
        WHEN 'medical' THEN RETURN interval '5 years';
        WHEN 'saas' THEN RETURN interval '3 years';
        ELSE NULL;
    END CASE;
    BEGIN
        IF btrim(coalesce(p_policy, '')) = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
        END IF;
        v_keep := p_policy::interval;
        IF NOT isfinite(now() - v_keep) THEN
            RAISE EXCEPTION USING ERRCODE = 'datetime_field_overflow';
        END IF;
    EXCEPTION WHEN data_exception OR syntax_error THEN
        RAISE EXCEPTION 'auditsql: unknown retention policy %: use financial (7 years), medical (5 years), saas (3 years) or an interval such as ''2 years''',
            coalesce(quote_literal(p_policy), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF v_keep <= interval '0' THEN
        RAISE EXCEPTION 'auditsql: a retention policy must keep events for longer than zero, not %', quote_literal(p_policy)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_keep;
END
$fn$;
