-- create_partition: create the table that is to become the events partition
-- for [p_from, p_to), not yet attached, so that it can be filled before
-- anyone sees it. It has the log's columns, defaults, constraints and
-- indexes (LIKE), a CHECK constraint equal to its bound (so ATTACH PARTITION
-- need not scan it; attach_partition drops it), the statement guard, and
-- the log's privileges: nothing for PUBLIC, no UPDATE, DELETE or TRUNCATE
-- for the owner. The row guard is cloned onto it by ATTACH PARTITION. Runs
-- with the caller's rights; called by ensure_partitions, maintain and
-- apply_retention, which run as the owner.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.create_partition(
    p_name text,
    p_from timestamptz,
    p_to   timestamptz)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.events INCLUDING ALL EXCLUDING COMMENTS, '
                   'CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L))',
                   {{ schema | literal }}, p_name, {{ schema | literal }},
                   p_name || '_bound', p_from, p_to);
    EXECUTE format('CREATE TRIGGER auditsql_guard_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %I.guard()',
                   {{ schema | literal }}, p_name, {{ schema | literal }});
    EXECUTE format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER auditsql_guard_statement',
                   {{ schema | literal }}, p_name);
    EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', {{ schema | literal }}, p_name);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.%I FROM %I',
                   {{ schema | literal }}, p_name, {{ owner | literal }});
    RETURN format('%I.%I', {{ schema | literal }}, p_name)::regclass;
END
$fn$;
