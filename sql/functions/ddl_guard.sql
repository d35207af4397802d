{% from "fragments/macros.sql" import capture_trigger_forms %}
{#- The one function outside the audit schema (see auditsql/manifest.py). -#}
{%- set defines = [{"kind": "function", "name": "ddl_guard", "schema": guard_schema}] %}
-- ddl_guard: the event triggers' function (docs/verify.md#bypass-resistance).
-- It runs with the rights of whoever issues DDL, superusers included: so it
-- and its schema belong to the installing superuser, and it calls into the
-- audit schema only functions it has checked are SECURITY DEFINER functions
-- of the owner role, so that no member of that role can make it run code as
-- a superuser.
CREATE OR REPLACE FUNCTION {{ guard_schema | ident }}.ddl_guard()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_schema     oid := (SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = {{ schema | literal }});
    v_guarded    text[] := ARRAY[{{ schema | literal }}, {{ guard_schema | literal }}];
    v_guarded_oids oid[] := ARRAY(SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = ANY (v_guarded));
    v_owner      oid := (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = {{ owner | literal }});
    v_privileged boolean;
    v_command    record;
    v_flagged    text[] := ARRAY[]::text[];
    v_touched    oid[] := ARRAY[]::oid[];
    v_root       oid;
    v_leaf       record;
    v_cast       text;
BEGIN
    -- The flag counts for a superuser's session (install runs under SET ROLE
    -- to the owner), or for the owner role reached through its SECURITY
    -- DEFINER functions (the role setting is not the owner's then); never for
    -- SET ROLE alone.
    IF current_setting('auditsql.permit_ddl', true) = 'on'
       AND ((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = session_user)
            OR (current_user = {{ owner | literal }}
                AND current_setting('role') IS DISTINCT FROM {{ owner | literal }})) THEN
        RETURN;
    END IF;
    -- As current_user: the role whose rights the DDL runs with.
    v_privileged := (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user)
                    OR EXISTS (SELECT FROM pg_roles AS r
                               WHERE r.rolname = {{ admin | literal }}
                                 AND pg_has_role(current_user, r.oid, 'MEMBER'));

    IF TG_EVENT = 'sql_drop' THEN
        -- Dropped objects are gone from the catalog: judge them by name and
        -- by the table they were on.
        SELECT coalesce(array_agg(format('%s %s', d.object_type, d.object_identity)), '{}')
          INTO v_flagged
        FROM pg_event_trigger_dropped_objects() AS d
        WHERE d.original
          AND (d.schema_name = ANY (v_guarded)
               OR (d.object_type = 'schema' AND d.object_name = ANY (v_guarded))
               -- a trigger's schema is its table's (unset before PostgreSQL 15)
               OR (d.object_type = 'trigger' AND d.address_names[1] = ANY (v_guarded))
               OR (d.object_type = 'trigger'
                   AND d.address_names[cardinality(d.address_names)] LIKE 'auditsql\_%'
                   AND EXISTS (
                       SELECT FROM pg_class AS c
                       JOIN pg_namespace AS n ON n.oid = c.relnamespace
                       WHERE n.nspname = d.address_names[1] AND c.relname = d.address_names[2]
                         AND to_regprocedure(format('%I.%I()', {{ schema | literal }},
                                 'capture_' || coalesce(pg_partition_root(c.oid)::oid, c.oid))) IS NOT NULL)));
        -- A partition dropped with its capture triggers: the audited
        -- partitioned tables record it (refresh).
        IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS d
                   WHERE d.object_type = 'trigger' AND NOT d.original
                     AND d.address_names[cardinality(d.address_names)] LIKE 'auditsql\_%') THEN
            v_touched := ARRAY(SELECT c.oid FROM pg_proc AS p
                               JOIN pg_class AS c ON c.oid = substr(p.proname, 9)::oid
                               WHERE p.pronamespace = v_schema AND p.proname ~ '^capture_[0-9]+$'
                                 AND c.relkind = 'p');
        END IF;
    ELSE
        FOR v_command IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
            -- to_jsonb() runs a cast to json of a column's type inside
            -- capture, as the owner role: none may run an ordinary role's
            -- code. Refused for everyone, so that capture need not probe
            -- for such casts on each write where these triggers are in
            -- force (capture_source).
            IF v_command.classid IN ('pg_cast'::regclass, 'pg_proc'::regclass) THEN
                SELECT format('%s -> %s (function %s)', c.castsource::regtype, c.casttarget::regtype,
                              c.castfunc::regprocedure)
                  INTO v_cast
                FROM pg_cast AS c
                JOIN pg_proc AS p ON p.oid = c.castfunc
                JOIN pg_roles AS r ON r.oid = p.proowner
                WHERE CASE WHEN v_command.classid = 'pg_cast'::regclass THEN c.oid ELSE c.castfunc END
                          = v_command.objid
                  AND c.casttarget IN ('json'::regtype, 'jsonb'::regtype)
                  AND c.castsource >= 16384 AND NOT r.rolsuper
                LIMIT 1;
                IF v_cast IS NOT NULL THEN
                    RAISE EXCEPTION 'auditsql: % refused: the cast % would run an ordinary role''s function with audit rights', TG_TAG, v_cast
                        USING ERRCODE = 'insufficient_privilege',
                              HINT = 'Have a superuser own the cast''s function.';
                END IF;
            END IF;
            IF v_command.schema_name = ANY (v_guarded)
               OR (v_command.classid = 'pg_namespace'::regclass
                   AND v_command.objid = ANY (v_guarded_oids)) THEN
                v_flagged := v_flagged || format('%s %s', v_command.command_tag, v_command.object_identity);
            ELSIF v_command.classid = 'pg_trigger'::regclass THEN
                v_flagged := v_flagged || coalesce((
                    SELECT array_agg(format('%s %s', v_command.command_tag, v_command.object_identity))
                    FROM pg_trigger AS t
                    JOIN pg_class AS c ON c.oid = t.tgrelid
                    JOIN pg_proc AS p ON p.oid = t.tgfoid
                    CROSS JOIN LATERAL (SELECT coalesce(pg_partition_root(t.tgrelid)::oid, t.tgrelid) AS root) AS r
                    WHERE t.oid = v_command.objid AND t.tgparentid = 0
                      AND (t.tgname LIKE 'auditsql\_%' OR p.pronamespace = v_schema
                           OR c.relnamespace = v_schema)
                      -- Adding a capture trigger exactly as attach makes it
                      -- never weakens auditing.
                      AND NOT (v_command.command_tag = 'CREATE TRIGGER'
                               AND EXISTS (
                                   SELECT FROM {{ capture_trigger_forms('f') }}
                                   WHERE f.name = t.tgname
                                     AND (f.on_leaves OR t.tgrelid = r.root)
                                     AND pg_get_triggerdef(t.oid) = format(f.definition, t.tgrelid::regclass,
                                             format('%I.%I', {{ schema | literal }}, 'capture_' || r.root))
                                     -- and not beside those of the other capture mode
                                     AND NOT EXISTS (
                                         SELECT FROM pg_trigger AS o
                                         JOIN {{ capture_trigger_forms('g') }} ON g.name = o.tgname
                                         WHERE o.tgrelid = t.tgrelid AND f.capture <> 'any'
                                           AND g.capture NOT IN ('any', f.capture))))), '{}');
            ELSIF v_command.classid = 'pg_namespace'::regclass
                  AND v_command.command_tag = 'ALTER SCHEMA' THEN
                -- A renamed schema renames its audited tables: their capture
                -- functions hold the names (capture_source).
                v_touched := v_touched || ARRAY(
                    SELECT c.oid FROM pg_class AS c
                    WHERE c.relnamespace = v_command.objid AND NOT c.oid = ANY (v_touched)
                      AND to_regprocedure(format('%I.%I()', {{ schema | literal }}, 'capture_' || c.oid)) IS NOT NULL);
            ELSIF v_command.classid = 'pg_class'::regclass
                  AND v_command.command_tag IN ('ALTER TABLE', 'CREATE TABLE') THEN
                v_flagged := v_flagged || coalesce((
                    SELECT array_agg(format('%I on %s left %s', t.tgname, t.tgrelid::regclass,
                                            CASE t.tgenabled WHEN 'D' THEN 'disabled'
                                                             WHEN 'R' THEN 'enabled for replica only'
                                                             ELSE 'enabled without ALWAYS' END))
                    FROM pg_trigger AS t
                    WHERE v_command.command_tag = 'ALTER TABLE'
                      AND t.tgrelid IN (SELECT v_command.objid
                                        UNION ALL
                                        SELECT r.relid FROM pg_partition_tree(v_command.objid) AS r)
                      AND t.tgname LIKE 'auditsql\_%' AND t.tgenabled <> 'A'), '{}');
                v_root := coalesce(pg_partition_root(v_command.objid)::oid, v_command.objid);
                IF to_regprocedure(format('%I.%I()', {{ schema | literal }}, 'capture_' || v_root)) IS NOT NULL
                   AND NOT v_root = ANY (v_touched) THEN
                    v_touched := v_touched || v_root;
                END IF;
            END IF;
            -- Nothing outside the audit schema may belong to the owner role:
            -- it would act with the owner's rights over the log.
            IF v_command.classid IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_namespace'::regclass)
               AND NOT coalesce(v_command.schema_name = ANY (v_guarded), false)
               AND NOT (v_command.classid = 'pg_namespace'::regclass AND v_command.objid = ANY (v_guarded_oids))
               AND v_owner = (SELECT coalesce(p.proowner, c.relowner, n.nspowner)
                              FROM (SELECT v_command.objid AS objid) AS o
                              LEFT JOIN pg_proc AS p ON v_command.classid = 'pg_proc'::regclass AND p.oid = o.objid
                              LEFT JOIN pg_class AS c ON v_command.classid = 'pg_class'::regclass AND c.oid = o.objid
                              LEFT JOIN pg_namespace AS n ON v_command.classid = 'pg_namespace'::regclass AND n.oid = o.objid) THEN
                v_flagged := v_flagged || format('%s %s owned by %s', v_command.command_tag,
                                                 v_command.object_identity, {{ owner | literal }});
            END IF;
        END LOOP;
    END IF;

    IF cardinality(v_flagged) > 0 THEN
        IF NOT v_privileged THEN
            RAISE EXCEPTION 'auditsql: % refused: it would stop or weaken auditing (%)',
                TG_TAG, array_to_string(v_flagged, '; ')
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('Only members of %s may change, disable or drop audit triggers and objects, and what they do is recorded.',
                                    {{ admin | literal }});
        END IF;
        IF EXISTS (SELECT FROM pg_proc AS p
                   WHERE p.oid = to_regprocedure(format('%I.record_ddl(text,text[])', {{ schema | literal }}))
                     AND p.prosecdef AND p.proowner = v_owner) THEN
            PERFORM {{ schema | ident }}.record_ddl(TG_TAG, v_flagged);
        ELSE
            RAISE WARNING 'auditsql: % not recorded: %.record_ddl is missing or not the owner role''s', TG_TAG, {{ schema | literal }};
        END IF;
    END IF;

    IF cardinality(v_touched) = 0 THEN
        RETURN;
    END IF;
    -- New leaves get the TRUNCATE trigger and the grant attach would give
    -- them, with the rights of whoever added them (their owner). Neither this
    -- nor the refresh may fail the DDL that led here.
    FOR v_leaf IN
        SELECT p.relid::regclass AS rel, r.root
        FROM unnest(v_touched) AS r(root)
        JOIN pg_class AS c ON c.oid = r.root AND c.relkind = 'p'
        CROSS JOIN LATERAL pg_partition_tree(r.root) AS p
        WHERE p.isleaf
          AND NOT EXISTS (SELECT FROM pg_trigger AS t
                          WHERE t.tgrelid = p.relid AND t.tgname = 'auditsql_capture_truncate')
    LOOP
        BEGIN
            EXECUTE (SELECT format(f.definition, v_leaf.rel,
                                   format('%I.%I', {{ schema | literal }}, 'capture_' || v_leaf.root))
                     FROM {{ capture_trigger_forms('f') }} WHERE f.name = 'auditsql_capture_truncate');
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_truncate', v_leaf.rel);
            -- TRUNCATE capture reads the rows as the owner role.
            IF NOT has_table_privilege({{ owner | literal }}, v_leaf.rel, 'SELECT') THEN
                EXECUTE format('GRANT SELECT ON %s TO %I', v_leaf.rel, {{ owner | literal }});
            END IF;
        EXCEPTION WHEN insufficient_privilege OR duplicate_object THEN
            RAISE WARNING 'auditsql: % has no TRUNCATE capture trigger: %', v_leaf.rel, SQLERRM
                USING HINT = 'Run auditsql attach on its partitioned table.';
        END;
    END LOOP;
    IF EXISTS (SELECT FROM pg_proc AS p
               WHERE p.oid = to_regprocedure(format('%I.refresh(regclass)', {{ schema | literal }}))
                 AND p.prosecdef AND p.proowner = v_owner) THEN
        FOR v_root IN SELECT unnest(v_touched) LOOP
            BEGIN
                PERFORM {{ schema | ident }}.refresh(v_root::regclass);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'auditsql: capture of % not refreshed: %', v_root::regclass, SQLERRM;
            END;
        END LOOP;
    END IF;
END
$fn$;
