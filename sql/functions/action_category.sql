{% from "fragments/macros.sql" import data_actions, system_actions, auth_actions %}
-- action_category: checks an action an application names (log_event, an
-- on-change policy) and files it under auth or app. The actions auditsql
-- writes itself are refused as a privilege: an application may not forge them.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.action_category(p_action text)
RETURNS {{ schema | ident }}.category
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'auditsql: invalid action %: use 1 to 63 lower-case letters, digits and underscores, starting with a letter',
            coalesce(quote_literal(left(p_action, 80)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_action IN ({% for a in data_actions + system_actions %}{{ a | literal }}{{ ", " if not loop.last }}{% endfor %}) THEN
        RAISE EXCEPTION 'auditsql: action % is written by auditsql itself and cannot be logged by an application', p_action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN p_action IN ({% for a in auth_actions %}{{ a | literal }}{{ ", " if not loop.last }}{% endfor %})
                THEN 'auth' ELSE 'app' END;
END
$fn$;
