-- create_partition: a table to become an events partition, made apart so
-- that it can be filled before anyone sees it. The CHECK constraint spares
-- ATTACH PARTITION a scan; ATTACH clones the row guard onto it.
-- Not SECURITY DEFINER: its callers run as the owner role.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.create_partition(
    p_name text,
    p_from timestamptz,
    p_to   timestamptz)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rel regclass;
BEGIN
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.events INCLUDING ALL EXCLUDING COMMENTS, '
                   'CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L))',
                   {{ schema | literal }}, p_name, {{ schema | literal }},
                   p_name || '_bound', p_from, p_to);
    v_rel := format('%I.%I', {{ schema | literal }}, p_name)::regclass;
    PERFORM {{ schema | ident }}.partition_brin(v_rel, true);
    EXECUTE format('CREATE TRIGGER auditsql_guard_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %I.guard()',
                   {{ schema | literal }}, p_name, {{ schema | literal }});
    EXECUTE format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER auditsql_guard_statement',
                   {{ schema | literal }}, p_name);
    EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', {{ schema | literal }}, p_name);
    -- Its creator, the owner role, holds every privilege on it: not these.
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.%I FROM %I',
                   {{ schema | literal }}, p_name, {{ owner | literal }});
    RETURN v_rel;
END
$fn$;
