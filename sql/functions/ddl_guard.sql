-- ddl_guard: event trigger function that keeps every role but an audit
-- administrator from quietly stopping or weakening auditing. Refused, with
-- the whole statement rolled back:
--   * ALTER TABLE that leaves an auditsql_* trigger of the table (or of one
--     of its partitions) not ENABLE ALWAYS: DISABLE TRIGGER (by name, ALL or
--     USER), ENABLE TRIGGER, ENABLE REPLICA TRIGGER;
--   * DROP TRIGGER of an auditsql_* trigger (dropping the table with its
--     triggers is allowed), and creating, replacing, renaming or commenting
--     on a trigger named auditsql_* or calling an audit function;
--   * creating, altering, commenting on or dropping anything in the audit
--     schema, or the schema itself.
-- GRANT and REVOKE are not inspected (event triggers do not see what they
-- apply to); only members of the owner role can grant on audit objects, and
-- `auditsql verify` reports any privilege nobody should hold.
-- Allowed: superusers and members of the admin role, and auditsql's own
-- routines (install, attach, detach, ensure_partitions), which set the
-- transaction-local flag auditsql.permit_ddl while they run: the flag counts
-- only when the current role is a member of the owner role, so an
-- application role gains nothing by setting it.
-- Fired on ddl_command_end (when the objects a command touched can be seen)
-- and on sql_drop, by event triggers only a superuser can create, with the
-- rights of whoever issues the DDL. So the function and its schema belong
-- to the installing superuser, outside the audit schema: no member of the
-- owner role can replace it with code that would run as a superuser, or
-- drop it (and the event triggers with it). Event triggers need no EXECUTE
-- or USAGE privilege, so nobody is granted any (setup/event_trigger.sql).
CREATE OR REPLACE FUNCTION {{ guard_schema | ident }}.ddl_guard()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_schema  oid := (SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = {{ schema | literal }});
    v_guarded text[] := ARRAY[{{ schema | literal }}, {{ guard_schema | literal }}];
    v_guarded_oids oid[] := ARRAY(SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = ANY (v_guarded));
    v_command record;
    v_refused text[] := ARRAY[]::text[];
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user)
       OR EXISTS (SELECT FROM pg_roles AS r
                  WHERE r.rolname = {{ admin | literal }}
                    AND pg_has_role(current_user, r.oid, 'MEMBER'))
       OR (current_setting('auditsql.permit_ddl', true) = 'on'
           AND EXISTS (SELECT FROM pg_roles AS r
                       WHERE r.rolname = {{ owner | literal }}
                         AND pg_has_role(current_user, r.oid, 'MEMBER'))) THEN
        RETURN;
    END IF;

    IF TG_EVENT = 'sql_drop' THEN
        -- Dropped objects are gone from the catalog: judge them by name, and
        -- name the objects the command dropped by name.
        SELECT array_agg(format('%s %s', d.object_type, d.object_identity)) FILTER (WHERE d.original)
        INTO v_refused
        FROM pg_event_trigger_dropped_objects() AS d
        HAVING bool_or(d.schema_name = ANY (v_guarded)
                       OR (d.object_type = 'schema' AND d.object_name = ANY (v_guarded))
                       OR (d.object_type = 'trigger' AND d.original
                           AND d.address_names[cardinality(d.address_names)] LIKE 'auditsql\_%'));
    ELSE
        FOR v_command IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
            IF v_command.schema_name = ANY (v_guarded)
               OR (v_command.classid = 'pg_namespace'::regclass
                   AND v_command.objid = ANY (v_guarded_oids)) THEN
                v_refused := v_refused || format('%s %s', v_command.command_tag, v_command.object_identity);
            ELSIF v_command.classid = 'pg_trigger'::regclass THEN
                v_refused := v_refused || (
                    SELECT array_agg(format('%s %s', v_command.command_tag, v_command.object_identity))
                    FROM pg_trigger AS t
                    JOIN pg_class AS c ON c.oid = t.tgrelid
                    JOIN pg_proc AS p ON p.oid = t.tgfoid
                    WHERE t.oid = v_command.objid AND t.tgparentid = 0
                      AND (t.tgname LIKE 'auditsql\_%' OR p.pronamespace = v_schema
                           OR c.relnamespace = v_schema));
            ELSIF v_command.classid = 'pg_class'::regclass AND v_command.command_tag = 'ALTER TABLE' THEN
                v_refused := v_refused || (
                    SELECT array_agg(format('%I on %s left %s', t.tgname, t.tgrelid::regclass,
                                            CASE t.tgenabled WHEN 'D' THEN 'disabled'
                                                             WHEN 'R' THEN 'enabled for replica only'
                                                             ELSE 'enabled without ALWAYS' END))
                    FROM pg_trigger AS t
                    WHERE t.tgrelid IN (SELECT v_command.objid
                                        UNION ALL
                                        SELECT r.relid FROM pg_partition_tree(v_command.objid) AS r)
                      AND t.tgname LIKE 'auditsql\_%' AND t.tgenabled <> 'A');
            END IF;
        END LOOP;
    END IF;

    IF cardinality(v_refused) > 0 THEN
        RAISE EXCEPTION 'auditsql: % refused: it would stop or weaken auditing (%)',
            TG_TAG, array_to_string(v_refused, '; ')
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Only members of %s may change, disable or drop audit triggers and objects.',
                                {{ admin | literal }});
    END IF;
END
$fn$;
