-- retention_interval: the interval a policy keeps events for, or the
-- sentence saying why the policy is refused.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.retention_interval(p_policy text)
RETURNS interval
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
AS $fn$
DECLARE
    v_text     text := btrim(coalesce(p_policy, ''));
    v_keep     interval;
    v_overflow boolean := false;
    v_cutoff   timestamptz;
BEGIN
    CASE lower(v_text)
        WHEN 'financial' THEN RETURN interval '7 years';
        WHEN 'medical' THEN RETURN interval '5 years';
        WHEN 'saas' THEN RETURN interval '3 years';
        ELSE NULL;
    END CASE;
    -- A number needs its unit: PostgreSQL reads '7' as 7 seconds, which
    -- would drop every month at the next run. Refused: digits without any
    -- word, a number followed by neither a word nor a colon ('1 year 7';
    -- 10:00 spells its units by its form), and ISO P or PT with only a number.
    IF v_text <> ''
       AND (CASE WHEN v_text ~ '^[+-]?P'
                 THEN v_text ~ '^[+-]?PT?\s*[0-9.]+$'
                 ELSE (v_text ~ '[0-9]' AND v_text !~ '[[:alpha:]]')
                      OR v_text ~ '(?<![0-9.:])[0-9.]+(?![0-9.:]|\s*[[:alpha:]])' END) THEN
        RAISE EXCEPTION 'auditsql: retention policy % has a number without a unit; a unit is required: ''7 years'', not ''7'' (a bare number would be read as seconds)',
            quote_literal(p_policy)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        IF v_text = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
        END IF;
        v_keep := v_text::interval;
    EXCEPTION
        WHEN datetime_field_overflow OR interval_field_overflow THEN
            v_overflow := true;
        WHEN data_exception OR syntax_error THEN
            RAISE EXCEPTION 'auditsql: unknown retention policy %: use financial (7 years), medical (5 years), saas (3 years) or an interval such as ''2 years''',
                coalesce(quote_literal(p_policy), 'NULL')
                USING ERRCODE = 'invalid_parameter_value';
    END;
    IF NOT v_overflow THEN
        BEGIN
            v_cutoff := {{ schema | ident }}.retention_cutoff(v_keep, now());
        EXCEPTION WHEN datetime_field_overflow THEN
            v_overflow := true;
        END;
    END IF;
    -- Not longer than zero by either measure: as an interval (the table's
    -- CHECK) or by the time it reaches back from now.
    IF v_keep <= interval '0' OR v_cutoff >= now()
       OR (v_keep IS NULL AND v_overflow AND v_text ~ '-') THEN
        RAISE EXCEPTION 'auditsql: a retention policy must keep events for longer than zero, not %', quote_literal(p_policy)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_overflow OR NOT isfinite(v_cutoff)
       OR v_cutoff < {{ schema | ident }}.retention_cutoff(interval '100 years', now()) THEN
        RAISE EXCEPTION 'auditsql: retention policy % is too long: a policy may keep events for at most 100 years', quote_literal(p_policy)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_keep;
END
$fn$;
