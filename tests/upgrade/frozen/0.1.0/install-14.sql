-- auditsql 0.1.0: install into schema "audit"
SET LOCAL client_min_messages = warning;
SET LOCAL standard_conforming_strings = on;
SET LOCAL check_function_bodies = on;
SET LOCAL search_path = pg_catalog, pg_temp;
-- auditsql's own DDL on audit objects (see functions/ddl_guard.sql).
SET LOCAL auditsql.permit_ddl = on;

-- Preflight: refuse, before anything is created, a server or a role that
-- cannot hold auditsql. Each failure is one sentence saying what to do.
SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('auditsql.install'));

DO $preflight$
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RAISE EXCEPTION 'auditsql needs PostgreSQL 14 or newer; this server is %',
            current_setting('server_version')
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_owner')
       OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_reader')
       OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_admin') THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role % may not create roles; install as a superuser or a role with CREATEROLE, or create roles %, % and % first',
                current_user, 'auditsql_owner', 'auditsql_reader', 'auditsql_admin'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'this install script creates event triggers, which only a superuser may do; role % is not one: render the script as the role that runs it (auditsql install --dry-run)',
            current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'audit')
       AND NOT has_database_privilege(current_database(), 'CREATE') THEN
        RAISE EXCEPTION 'role % may not create schemas in database %; grant it CREATE on the database or install as its owner',
            current_user, current_database()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
               WHERE n.nspname = 'audit' AND r.rolname <> 'auditsql_owner') THEN
        RAISE EXCEPTION 'schema % already exists and is not owned by %; choose another schema with --schema',
            'audit', 'auditsql_owner'
            USING ERRCODE = 'duplicate_schema';
    END IF;
END
$preflight$;

-- Roles: the owner holds every audit object and cannot log in; the reader may
-- read the log; the writer may log application events (log_event); members
-- of the admin role are audit administrators, whom the event triggers (when a
-- superuser installs) let change, disable or drop audit triggers and objects.
-- The writer and admin roles hold no other privilege. Existing roles are
-- reused, but the owner is made NOLOGIN.
-- The installing role becomes a member of the owner so that it can create
-- objects on its behalf (on PostgreSQL 16+ a CREATEROLE role must grant
-- itself that membership explicitly).
DO $roles$
BEGIN
    -- Roles belong to the cluster: an install into another database may be
    -- creating the same role at this moment, so a duplicate is not an error.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_owner') THEN
        BEGIN
            CREATE ROLE "auditsql_owner" NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_reader') THEN
        BEGIN
            CREATE ROLE "auditsql_reader" NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_writer') THEN
        BEGIN
            CREATE ROLE "auditsql_writer" NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditsql_admin') THEN
        BEGIN
            CREATE ROLE "auditsql_admin" NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- TRUNCATE capture reads rows as the owner with row_security off; with
    -- BYPASSRLS it can read tables under row-level security, otherwise such
    -- a TRUNCATE fails rather than lose rows. Only a superuser can grant it.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'auditsql_owner') THEN
        ALTER ROLE "auditsql_owner" BYPASSRLS;
    END IF;
    IF (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'auditsql_owner') THEN
        ALTER ROLE "auditsql_owner" NOLOGIN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        GRANT "auditsql_owner" TO CURRENT_USER;
    END IF;
END
$roles$;
-- The roles may have been created by an earlier install, by another role:
-- commenting on a role someone else created needs rights (ADMIN OPTION on
-- PostgreSQL 16+) that a CREATEROLE role upgrading it may lack.
DO $comments$
DECLARE
    v_role record;
BEGIN
    FOR v_role IN
        SELECT * FROM (VALUES
            ('auditsql_owner', 'auditsql: owns the audit schema; NOLOGIN'),
            ('auditsql_reader', 'auditsql: may read the audit log'),
            ('auditsql_writer', 'auditsql: may log application events (log_event); grant it to application roles'),
            ('auditsql_admin', 'auditsql: audit administrators; may change, disable or drop audit triggers and objects'))
            AS r(name, note)
    LOOP
        BEGIN
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_role.name, v_role.note);
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END LOOP;
END
$comments$;

-- The audit schema. Roles may look up the context helpers in it (USAGE), but
-- PUBLIC holds no privilege on any table, sequence or other function.
CREATE SCHEMA IF NOT EXISTS "audit" AUTHORIZATION "auditsql_owner";
COMMENT ON SCHEMA "audit" IS 'auditsql: append-only audit log';


SET LOCAL ROLE "auditsql_owner";


-- fingerprints: every object auditsql may have created in this schema (and
-- the event trigger function's, see functions/ddl_guard.sql), with
-- the digest of its definition and the fingerprint its comment carries (see
-- sql/fingerprint/catalog.sql for the columns). With p_classid and p_objids,
-- only those objects. Install, attach and ensure_partitions stamp what they
-- create through it; `auditsql verify` runs the same query itself rather
-- than trust this function.
CREATE OR REPLACE FUNCTION "audit".fingerprints(
    p_classid regclass DEFAULT NULL,
    p_objids  oid[]    DEFAULT NULL)
RETURNS TABLE (classid regclass, objid oid, kind text, schema_name text, name text,
               table_name text, identity text, target text, owner text, implicit boolean,
               enabled text, function_schema text, security_definer boolean, config text[],
               body_digest text, digest text, description text, comment text,
               stamped_version text, stamped_digest text, stamped_source text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET quote_all_identifiers = off
SET standard_conforming_strings = on
SET "TimeZone" = 'UTC'
SET "DateStyle" = 'ISO, MDY'
SET "IntervalStyle" = postgres
SET extra_float_digits = 1
SET bytea_output = hex
SET jit = off
AS $fn$
#variable_conflict use_column
BEGIN
    IF p_classid IS NULL THEN
        RETURN QUERY WITH s AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                   WHERE n.nspname IN ('audit', 'auditsql_guard_audit'))
        SELECT o.classid, o.objid, o.kind, o.schema_name, o.name, o.table_name, o.identity, o.target,
               o.owner, o.implicit, o.enabled, o.function_schema, o.security_definer, o.config,
               o.body_digest,
               encode(sha256(convert_to(coalesce(o.definition, ''), 'UTF8')), 'hex') AS digest,
               CASE WHEN f.m IS NULL THEN coalesce(o.comment, '')
                    ELSE rtrim(left(o.comment, length(o.comment) - length(f.last)), E'\n')
               END AS description,
               o.comment,
               f.m[1] AS stamped_version, f.m[2] AS stamped_digest, f.m[3] AS stamped_source
        FROM (SELECT o.*, (SELECT d.description FROM pg_description AS d
                           WHERE d.objoid = o.objid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
              FROM (
            SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid,
                   'function'::text AS kind, n.nspname::text AS schema_name, p.proname::text AS name,
                   NULL::text AS table_name, p.oid::regprocedure::text AS identity,
                   format('ROUTINE %s', p.oid::regprocedure) AS target,
                   pg_get_userbyid(p.proowner)::text AS owner, false AS implicit,
                   NULL::text AS enabled, NULL::text AS function_schema,
                   p.prosecdef AS security_definer, p.proconfig AS config,
                   encode(sha256(convert_to(p.prosrc, 'UTF8')), 'hex') AS body_digest,
                   CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
                        ELSE format('%s %s', p.prokind, p.oid::regprocedure) END AS definition
            FROM pg_proc AS p
            JOIN pg_namespace AS n ON n.oid = p.pronamespace
            WHERE p.pronamespace IN (SELECT oid FROM s)
            UNION ALL
            SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid,
                   CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
                                  WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                                  WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                  ELSE 'foreign table' END,
                   n.nspname::text, c.relname::text,
                   (SELECT t.relname::text FROM pg_index AS i JOIN pg_class AS t ON t.oid = i.indrelid
                    WHERE i.indexrelid = c.oid),
                   c.oid::regclass::text,
                   format('%s %s', CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE'
                                                  WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX'
                                                  WHEN 'I' THEN 'INDEX' WHEN 'v' THEN 'VIEW'
                                                  WHEN 'm' THEN 'MATERIALIZED VIEW'
                                                  ELSE 'FOREIGN TABLE' END, c.oid::regclass),
                   pg_get_userbyid(c.relowner)::text,
                   c.relkind IN ('i', 'I')
                   AND (c.relispartition
                        OR EXISTS (SELECT FROM pg_constraint AS k
                                   WHERE k.conindid = c.oid AND k.conrelid <> 0 AND k.contype IN ('p', 'u', 'x'))),
                   NULL::text, NULL::text, NULL::boolean, NULL::text[], NULL::text,
                   CASE
                       WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)
                       WHEN c.relkind IN ('v', 'm') THEN
                           concat_ws(E'\n', array_to_string(c.reloptions, ','), pg_get_viewdef(c.oid))
                       WHEN c.relkind = 'S' THEN
                           (SELECT format('%s start %s increment %s min %s max %s cache %s cycle %s',
                                          format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
                                          q.seqmin, q.seqmax, q.seqcache, q.seqcycle)
                            FROM pg_sequence AS q WHERE q.seqrelid = c.oid)
                       ELSE concat_ws(E'\n',
                           format('%s %s rls %s %s', c.relkind, c.relpersistence,
                                  c.relrowsecurity, c.relforcerowsecurity),
                           array_to_string(c.reloptions, ','),
                           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                           pg_get_expr(c.relpartbound, c.oid),
                           (SELECT string_agg(format('%I %s%s%s%s', a.attname,
                                                     format_type(a.atttypid, a.atttypmod),
                                                     CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                                                     ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                                                     nullif(' ' || a.attidentity::text || a.attgenerated::text, ' ')),
                                              ', ' ORDER BY a.attnum)
                            FROM pg_attribute AS a
                            LEFT JOIN pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                           (SELECT string_agg(format('%I %s', k.conname, pg_get_constraintdef(k.oid)),
                                              ', ' ORDER BY k.conname)
                            FROM pg_constraint AS k WHERE k.conrelid = c.oid))
                   END
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.relnamespace IN (SELECT oid FROM s)
              AND c.relkind IN ('r', 'p', 'S', 'i', 'I', 'v', 'm', 'f')
            UNION ALL
            SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 'trigger',
                   n.nspname::text, t.tgname::text, c.relname::text,
                   format('%I on %s', t.tgname, t.tgrelid::regclass),
                   format('TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass),
                   pg_get_userbyid(c.relowner)::text, t.tgparentid <> 0,
                   t.tgenabled::text, fn.nspname::text, NULL::boolean, NULL::text[], NULL::text,
                   pg_get_triggerdef(t.oid)
            FROM pg_trigger AS t
            JOIN pg_class AS c ON c.oid = t.tgrelid
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            JOIN pg_proc AS p ON p.oid = t.tgfoid
            JOIN pg_namespace AS fn ON fn.oid = p.pronamespace
            WHERE (NOT t.tgisinternal OR t.tgparentid <> 0)
              AND (c.relnamespace IN (SELECT oid FROM s) OR p.pronamespace IN (SELECT oid FROM s))
            UNION ALL
            SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, e.oid, 'event trigger',
                   NULL::text, e.evtname::text, NULL::text, quote_ident(e.evtname),
                   format('EVENT TRIGGER %I', e.evtname),
                   pg_get_userbyid(e.evtowner)::text, false,
                   e.evtenabled::text, fn.nspname::text, NULL::boolean, NULL::text[], NULL::text,
                   format('%I on %s tags %s execute %s', e.evtname, e.evtevent,
                          coalesce(array_to_string(e.evttags, ','), '*'), e.evtfoid::regprocedure)
            FROM pg_event_trigger AS e
            JOIN pg_proc AS p ON p.oid = e.evtfoid
            JOIN pg_namespace AS fn ON fn.oid = p.pronamespace
            WHERE p.pronamespace IN (SELECT oid FROM s)
              ) AS o(classid, objid, kind, schema_name, name, table_name, identity, target, owner,
                     implicit, enabled, function_schema, security_definer, config, body_digest, definition)
              OFFSET 0) AS o
        CROSS JOIN LATERAL (SELECT l.last, regexp_match(l.last, '^auditsql ([^ ]+) sha256:([0-9a-f]+)(?: source:([0-9a-f]+))?$') AS m
                            FROM (SELECT reverse(split_part(reverse(o.comment), E'\n', 1)) AS last) AS l) AS f;
    ELSIF p_classid = 'pg_catalog.pg_proc'::regclass THEN
        RETURN QUERY WITH s AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                   WHERE n.nspname IN ('audit', 'auditsql_guard_audit'))
        SELECT o.classid, o.objid, o.kind, o.schema_name, o.name, o.table_name, o.identity, o.target,
               o.owner, o.implicit, o.enabled, o.function_schema, o.security_definer, o.config,
               o.body_digest,
               encode(sha256(convert_to(coalesce(o.definition, ''), 'UTF8')), 'hex') AS digest,
               CASE WHEN f.m IS NULL THEN coalesce(o.comment, '')
                    ELSE rtrim(left(o.comment, length(o.comment) - length(f.last)), E'\n')
               END AS description,
               o.comment,
               f.m[1] AS stamped_version, f.m[2] AS stamped_digest, f.m[3] AS stamped_source
        FROM (SELECT o.*, (SELECT d.description FROM pg_description AS d
                           WHERE d.objoid = o.objid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
              FROM (
            SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid,
                   'function'::text AS kind, n.nspname::text AS schema_name, p.proname::text AS name,
                   NULL::text AS table_name, p.oid::regprocedure::text AS identity,
                   format('ROUTINE %s', p.oid::regprocedure) AS target,
                   pg_get_userbyid(p.proowner)::text AS owner, false AS implicit,
                   NULL::text AS enabled, NULL::text AS function_schema,
                   p.prosecdef AS security_definer, p.proconfig AS config,
                   encode(sha256(convert_to(p.prosrc, 'UTF8')), 'hex') AS body_digest,
                   CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
                        ELSE format('%s %s', p.prokind, p.oid::regprocedure) END AS definition
            FROM pg_proc AS p
            JOIN pg_namespace AS n ON n.oid = p.pronamespace
            WHERE p.pronamespace IN (SELECT oid FROM s)
              AND p.oid = ANY (p_objids)
              ) AS o(classid, objid, kind, schema_name, name, table_name, identity, target, owner,
                     implicit, enabled, function_schema, security_definer, config, body_digest, definition)
              OFFSET 0) AS o
        CROSS JOIN LATERAL (SELECT l.last, regexp_match(l.last, '^auditsql ([^ ]+) sha256:([0-9a-f]+)(?: source:([0-9a-f]+))?$') AS m
                            FROM (SELECT reverse(split_part(reverse(o.comment), E'\n', 1)) AS last) AS l) AS f;
    ELSIF p_classid = 'pg_catalog.pg_class'::regclass THEN
        RETURN QUERY WITH s AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                   WHERE n.nspname IN ('audit', 'auditsql_guard_audit'))
        SELECT o.classid, o.objid, o.kind, o.schema_name, o.name, o.table_name, o.identity, o.target,
               o.owner, o.implicit, o.enabled, o.function_schema, o.security_definer, o.config,
               o.body_digest,
               encode(sha256(convert_to(coalesce(o.definition, ''), 'UTF8')), 'hex') AS digest,
               CASE WHEN f.m IS NULL THEN coalesce(o.comment, '')
                    ELSE rtrim(left(o.comment, length(o.comment) - length(f.last)), E'\n')
               END AS description,
               o.comment,
               f.m[1] AS stamped_version, f.m[2] AS stamped_digest, f.m[3] AS stamped_source
        FROM (SELECT o.*, (SELECT d.description FROM pg_description AS d
                           WHERE d.objoid = o.objid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
              FROM (
            SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid,
                   CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
                                  WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                                  WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                  ELSE 'foreign table' END,
                   n.nspname::text, c.relname::text,
                   (SELECT t.relname::text FROM pg_index AS i JOIN pg_class AS t ON t.oid = i.indrelid
                    WHERE i.indexrelid = c.oid),
                   c.oid::regclass::text,
                   format('%s %s', CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE'
                                                  WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX'
                                                  WHEN 'I' THEN 'INDEX' WHEN 'v' THEN 'VIEW'
                                                  WHEN 'm' THEN 'MATERIALIZED VIEW'
                                                  ELSE 'FOREIGN TABLE' END, c.oid::regclass),
                   pg_get_userbyid(c.relowner)::text,
                   c.relkind IN ('i', 'I')
                   AND (c.relispartition
                        OR EXISTS (SELECT FROM pg_constraint AS k
                                   WHERE k.conindid = c.oid AND k.conrelid <> 0 AND k.contype IN ('p', 'u', 'x'))),
                   NULL::text, NULL::text, NULL::boolean, NULL::text[], NULL::text,
                   CASE
                       WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)
                       WHEN c.relkind IN ('v', 'm') THEN
                           concat_ws(E'\n', array_to_string(c.reloptions, ','), pg_get_viewdef(c.oid))
                       WHEN c.relkind = 'S' THEN
                           (SELECT format('%s start %s increment %s min %s max %s cache %s cycle %s',
                                          format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
                                          q.seqmin, q.seqmax, q.seqcache, q.seqcycle)
                            FROM pg_sequence AS q WHERE q.seqrelid = c.oid)
                       ELSE concat_ws(E'\n',
                           format('%s %s rls %s %s', c.relkind, c.relpersistence,
                                  c.relrowsecurity, c.relforcerowsecurity),
                           array_to_string(c.reloptions, ','),
                           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                           pg_get_expr(c.relpartbound, c.oid),
                           (SELECT string_agg(format('%I %s%s%s%s', a.attname,
                                                     format_type(a.atttypid, a.atttypmod),
                                                     CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                                                     ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                                                     nullif(' ' || a.attidentity::text || a.attgenerated::text, ' ')),
                                              ', ' ORDER BY a.attnum)
                            FROM pg_attribute AS a
                            LEFT JOIN pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                           (SELECT string_agg(format('%I %s', k.conname, pg_get_constraintdef(k.oid)),
                                              ', ' ORDER BY k.conname)
                            FROM pg_constraint AS k WHERE k.conrelid = c.oid))
                   END
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.relnamespace IN (SELECT oid FROM s)
              AND c.relkind IN ('r', 'p', 'S', 'i', 'I', 'v', 'm', 'f')
              AND c.oid = ANY (p_objids)
              ) AS o(classid, objid, kind, schema_name, name, table_name, identity, target, owner,
                     implicit, enabled, function_schema, security_definer, config, body_digest, definition)
              OFFSET 0) AS o
        CROSS JOIN LATERAL (SELECT l.last, regexp_match(l.last, '^auditsql ([^ ]+) sha256:([0-9a-f]+)(?: source:([0-9a-f]+))?$') AS m
                            FROM (SELECT reverse(split_part(reverse(o.comment), E'\n', 1)) AS last) AS l) AS f;
    ELSIF p_classid = 'pg_catalog.pg_trigger'::regclass THEN
        RETURN QUERY WITH s AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                   WHERE n.nspname IN ('audit', 'auditsql_guard_audit'))
        SELECT o.classid, o.objid, o.kind, o.schema_name, o.name, o.table_name, o.identity, o.target,
               o.owner, o.implicit, o.enabled, o.function_schema, o.security_definer, o.config,
               o.body_digest,
               encode(sha256(convert_to(coalesce(o.definition, ''), 'UTF8')), 'hex') AS digest,
               CASE WHEN f.m IS NULL THEN coalesce(o.comment, '')
                    ELSE rtrim(left(o.comment, length(o.comment) - length(f.last)), E'\n')
               END AS description,
               o.comment,
               f.m[1] AS stamped_version, f.m[2] AS stamped_digest, f.m[3] AS stamped_source
        FROM (SELECT o.*, (SELECT d.description FROM pg_description AS d
                           WHERE d.objoid = o.objid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
              FROM (
            SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 'trigger',
                   n.nspname::text, t.tgname::text, c.relname::text,
                   format('%I on %s', t.tgname, t.tgrelid::regclass),
                   format('TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass),
                   pg_get_userbyid(c.relowner)::text, t.tgparentid <> 0,
                   t.tgenabled::text, fn.nspname::text, NULL::boolean, NULL::text[], NULL::text,
                   pg_get_triggerdef(t.oid)
            FROM pg_trigger AS t
            JOIN pg_class AS c ON c.oid = t.tgrelid
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            JOIN pg_proc AS p ON p.oid = t.tgfoid
            JOIN pg_namespace AS fn ON fn.oid = p.pronamespace
            WHERE (NOT t.tgisinternal OR t.tgparentid <> 0)
              AND (c.relnamespace IN (SELECT oid FROM s) OR p.pronamespace IN (SELECT oid FROM s))
              AND t.oid = ANY (p_objids)
              ) AS o(classid, objid, kind, schema_name, name, table_name, identity, target, owner,
                     implicit, enabled, function_schema, security_definer, config, body_digest, definition)
              OFFSET 0) AS o
        CROSS JOIN LATERAL (SELECT l.last, regexp_match(l.last, '^auditsql ([^ ]+) sha256:([0-9a-f]+)(?: source:([0-9a-f]+))?$') AS m
                            FROM (SELECT reverse(split_part(reverse(o.comment), E'\n', 1)) AS last) AS l) AS f;
    ELSIF p_classid = 'pg_catalog.pg_event_trigger'::regclass THEN
        RETURN QUERY WITH s AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                   WHERE n.nspname IN ('audit', 'auditsql_guard_audit'))
        SELECT o.classid, o.objid, o.kind, o.schema_name, o.name, o.table_name, o.identity, o.target,
               o.owner, o.implicit, o.enabled, o.function_schema, o.security_definer, o.config,
               o.body_digest,
               encode(sha256(convert_to(coalesce(o.definition, ''), 'UTF8')), 'hex') AS digest,
               CASE WHEN f.m IS NULL THEN coalesce(o.comment, '')
                    ELSE rtrim(left(o.comment, length(o.comment) - length(f.last)), E'\n')
               END AS description,
               o.comment,
               f.m[1] AS stamped_version, f.m[2] AS stamped_digest, f.m[3] AS stamped_source
        FROM (SELECT o.*, (SELECT d.description FROM pg_description AS d
                           WHERE d.objoid = o.objid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
              FROM (
            SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, e.oid, 'event trigger',
                   NULL::text, e.evtname::text, NULL::text, quote_ident(e.evtname),
                   format('EVENT TRIGGER %I', e.evtname),
                   pg_get_userbyid(e.evtowner)::text, false,
                   e.evtenabled::text, fn.nspname::text, NULL::boolean, NULL::text[], NULL::text,
                   format('%I on %s tags %s execute %s', e.evtname, e.evtevent,
                          coalesce(array_to_string(e.evttags, ','), '*'), e.evtfoid::regprocedure)
            FROM pg_event_trigger AS e
            JOIN pg_proc AS p ON p.oid = e.evtfoid
            JOIN pg_namespace AS fn ON fn.oid = p.pronamespace
            WHERE p.pronamespace IN (SELECT oid FROM s)
              AND e.oid = ANY (p_objids)
              ) AS o(classid, objid, kind, schema_name, name, table_name, identity, target, owner,
                     implicit, enabled, function_schema, security_definer, config, body_digest, definition)
              OFFSET 0) AS o
        CROSS JOIN LATERAL (SELECT l.last, regexp_match(l.last, '^auditsql ([^ ]+) sha256:([0-9a-f]+)(?: source:([0-9a-f]+))?$') AS m
                            FROM (SELECT reverse(split_part(reverse(o.comment), E'\n', 1)) AS last) AS l) AS f;
    END IF;
END
$fn$;


-- stamp: write the fingerprints of objects created at run time (the
-- triggers attach creates, the partitions ensure_partitions creates) into
-- their comments: the digest of each definition now, and the version. The
-- comments' other lines are kept. Returns how many objects it stamped.
-- The install script stamps its own objects (setup/stamp.sql). Runs with
-- the caller's rights: COMMENT ON needs the object's owner.
CREATE OR REPLACE FUNCTION "audit".stamp(
    p_classid regclass,
    p_objids  oid[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_object  record;
    v_comment text;
    v_count   integer := 0;
BEGIN
    FOR v_object IN SELECT * FROM "audit".fingerprints(p_classid, p_objids) LOOP
        v_comment := concat_ws(E'\n', nullif(v_object.description, ''),
                               format('auditsql %s sha256:%s', '0.1.0', v_object.digest) || coalesce(' source:' || NULL, ''));
        IF v_object.comment IS DISTINCT FROM v_comment THEN
            EXECUTE format('COMMENT ON %s IS %L', v_object.target, v_comment);
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$fn$;

-- Fingerprints before this install changes anything (its COMMENT statements
-- replace comments): which objects of an earlier install carry one, which
-- still match it, and the fingerprints of those that do not. Objects
-- install creates only when missing (tables, sequences, indexes), and
-- objects created at run time (partitions and their guards), are stamped
-- again at the end only if they carried none or were unchanged here; one
-- changed by hand gets its old fingerprint back, and stays visibly changed.
SELECT pg_catalog.set_config(
           'auditsql.stamped',
           coalesce(pg_catalog.string_agg(o.classid::oid::text || '/' || o.objid::text, ',')
                        FILTER (WHERE o.stamped_digest IS NOT NULL), ''),
           true) IS NOT NULL AS stamped_read,
       pg_catalog.set_config(
           'auditsql.intact',
           coalesce(pg_catalog.string_agg(o.classid::oid::text || '/' || o.objid::text, ',')
                        FILTER (WHERE o.stamped_digest = o.digest), ''),
           true) IS NOT NULL AS intact_read,
       pg_catalog.set_config(
           'auditsql.changed',
           coalesce(pg_catalog.jsonb_object_agg(
                        o.classid::oid::text || '/' || o.objid::text,
                        pg_catalog.reverse(pg_catalog.split_part(pg_catalog.reverse(o.comment), E'\n', 1)))
                        FILTER (WHERE o.stamped_digest <> o.digest), '{}')::text,
           true) IS NOT NULL AS changed_read
FROM "audit".fingerprints() AS o;

-- installation: one row per install or upgrade, newest last. `auditsql status`
-- reads the installed version from the newest row.
CREATE TABLE IF NOT EXISTS "audit".installation (
    version      text        NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    installed_by text        NOT NULL DEFAULT pg_catalog."session_user"(),
    settings     jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE "audit".installation IS 'auditsql: installed versions, newest last';

-- tables: which tables are audited, how their rows are identified, and what
-- attach granted (so that detach revokes exactly that). Names and kinds are
-- not copied here: they are read from pg_class, so a rename cannot leave a
-- stale name behind. Written only by attach() and detach(); the generated
-- capture function of each table carries what it needs, so the write path
-- never reads it. capture is 'row' (a row trigger: the cheapest for the
-- one-row statements of OLTP) or 'statement' (statement triggers over
-- transition tables: the cheapest for bulk writes). Column policies (see
-- attach): exclude (never stored), redact (stored as a marker), on_change
-- (column -> auth action recorded when an update changes it), require_actor
-- (a write without an actor in context fails).
CREATE TABLE IF NOT EXISTS "audit".tables (
    relid          oid         PRIMARY KEY,
    id_columns     text[]      NOT NULL,
    id_source      text        NOT NULL CHECK (id_source IN ('primary key', 'explicit')),
    capture        text        NOT NULL DEFAULT 'row' CHECK (capture IN ('row', 'statement')),
    exclude        text[]      NOT NULL DEFAULT '{}',
    redact         text[]      NOT NULL DEFAULT '{}',
    on_change      jsonb       NOT NULL DEFAULT '{}',
    require_actor  boolean     NOT NULL DEFAULT false,
    granted_select boolean     NOT NULL,
    granted_usage  oid[]       NOT NULL DEFAULT '{}',
    attached_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attached_by    text        NOT NULL DEFAULT pg_catalog."session_user"()
);
COMMENT ON TABLE "audit".tables IS 'auditsql: audited tables';

-- settings: installation-wide choices, one row. Changed only through
-- configure(), which regenerates every capture function that embeds them.
--   admin_roles  actor roles (auditsql.actor_role) whose events are admin
--                actions: whole before and after rows, whatever the column
--                policies except redaction
--   require_actor  every audited table refuses a write without an actor in
--                context (a table can also be strict on its own; see attach)
CREATE TABLE IF NOT EXISTS "audit".settings (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    admin_roles   text[]  NOT NULL DEFAULT '{admin}',
    require_actor boolean NOT NULL DEFAULT false
);
INSERT INTO "audit".settings DEFAULT VALUES ON CONFLICT DO NOTHING;
COMMENT ON TABLE "audit".settings IS 'auditsql: installation-wide settings (one row; change with configure())';

-- events: the audit log. Append-only (see setup/guards.sql), range-partitioned
-- by month on occurred_at, with a default partition so an insert never fails
-- for want of a partition. Fixed-width columns first for compact rows. The
-- indexed identifiers compare bytewise (COLLATE "C"): they are names and
-- keys, not prose, and every insert into their indexes compares them.
-- What kind of event a row is: data (a row created, updated, deleted or
-- truncated by capture), auth (log_event with an authentication action, or an
-- on-change policy), app (any other log_event action), system (auditing
-- itself: attach, detach, settings).
DO $category$
BEGIN
    CREATE TYPE "audit".category AS ENUM ('data', 'auth', 'app', 'system');
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$category$;

CREATE SEQUENCE IF NOT EXISTS "audit".events_id_seq AS bigint;

CREATE TABLE IF NOT EXISTS "audit".events (
    id                 bigint      NOT NULL DEFAULT pg_catalog.nextval('"audit".events_id_seq'::pg_catalog.regclass),
    occurred_at        timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    txid               bigint      NOT NULL DEFAULT pg_catalog.txid_current(),
    caused_by          bigint,
    category           "audit".category NOT NULL,
    admin              boolean     NOT NULL DEFAULT false,
    ip_address         inet,
    client_addr        inet,
    action             text        NOT NULL,
    entity_type        text COLLATE "C",
    entity_id          text COLLATE "C",
    previous_entity_id text COLLATE "C",
    actor_id           text COLLATE "C",
    actor_email        text,
    actor_role         text,
    user_agent         text,
    request_id         text,
    ip_address_raw     text,
    db_user            text        NOT NULL DEFAULT pg_catalog."session_user"(),
    application_name   text,
    changed_columns    text[],
    before             jsonb,
    after              jsonb
) PARTITION BY RANGE (occurred_at);

ALTER SEQUENCE "audit".events_id_seq OWNED BY "audit".events.id;

CREATE TABLE IF NOT EXISTS "audit".events_default
    PARTITION OF "audit".events DEFAULT;

-- "History of one entity": a btree on entity_id alone (the entity type is
-- checked on the few rows it finds). Every event enters it, so it is the
-- index the write path pays most for: a short key compares fast,
-- deduplicates when an entity has many events, and stays local when ids
-- grow, where a btree on (entity_type, entity_id) stored the table name
-- in every entry (89 bytes of index per event against 41) and a hash index
-- spread bulk writes over every page (more WAL, slower bulk writes; see
-- docs/performance.md). Earlier versions built the two-column btree
-- (events_entity_idx); install replaces it, which reindexes the log once.
DROP INDEX IF EXISTS "audit".events_entity_idx;
DROP INDEX IF EXISTS "audit".events_entity_hash;
CREATE INDEX IF NOT EXISTS events_entity_id_idx
    ON "audit".events (entity_id);
-- "Everything one actor did": only events that carry an actor.
CREATE INDEX IF NOT EXISTS events_actor_idx
    ON "audit".events (actor_id, occurred_at) WHERE actor_id IS NOT NULL;
-- Time ranges and id ranges: both columns grow with insertion order, so one
-- BRIN index summarises both for almost nothing per event (one index, not
-- two: every index costs each insert a lookup, whatever its size).
CREATE INDEX IF NOT EXISTS events_time_id_brin
    ON "audit".events USING brin (occurred_at, id);

COMMENT ON TABLE "audit".events IS 'auditsql: the append-only audit log';
COMMENT ON COLUMN "audit".events.id IS 'increasing event id; replay order';
COMMENT ON COLUMN "audit".events.txid IS 'id of the writing transaction (txid_current())';
COMMENT ON COLUMN "audit".events.action IS 'data: created, updated, deleted, truncated; system: attached, detached, configured, retention_policy_set, retention_applied, default_rows_moved, legal_hold_placed, legal_hold_released; auth and app: the action given to log_event or an on-change policy';
COMMENT ON COLUMN "audit".events.category IS 'data, auth, app or system';
COMMENT ON COLUMN "audit".events.admin IS 'the actor role was one of the admin roles (audit.settings): before and after are whole rows, whatever the column policies except redaction';
COMMENT ON COLUMN "audit".events.caused_by IS 'for an event an on-change policy wrote: the id of the data event that caused it';
COMMENT ON COLUMN "audit".events.changed_columns IS 'admin updates only, whose before is the whole row: the columns that changed (see the history view for every update)';
COMMENT ON COLUMN "audit".events.entity_type IS 'schema-qualified table name, quoted as needed';
COMMENT ON COLUMN "audit".events.entity_id IS 'row identity: the key value as text, or a JSON array for several key columns';
COMMENT ON COLUMN "audit".events.before IS 'row before the change: the whole row for deleted and truncated and for admin updates; for other updates, the old values of the columns that changed only (the whole old row is after || before; see the history view)';
COMMENT ON COLUMN "audit".events.after IS 'row after the change: the whole row for created and updated';
COMMENT ON COLUMN "audit".events.previous_entity_id IS 'set when an update changed the row key: the key before the update';
COMMENT ON COLUMN "audit".events.ip_address IS 'auditsql.ip_address, when it is a valid inet';
COMMENT ON COLUMN "audit".events.ip_address_raw IS 'auditsql.ip_address as given, when it is not a valid inet';
COMMENT ON COLUMN "audit".events.client_addr IS 'address of the database client (inet_client_addr())';
COMMENT ON COLUMN "audit".events.db_user IS 'session user of the writing connection';

-- history: audit.events with whole row images. A data update stores the
-- whole new row in `after` but, unless an admin made it, only the old values
-- of the changed columns in `before` (smaller rows; the changed columns are
-- its keys). Here `before` is the whole old row again, and changed_columns
-- lists the columns an update changed, in jsonb key order (redacted columns
-- included, excluded ones not). Everything else is as in events.
CREATE OR REPLACE VIEW "audit".history AS
SELECT e.id, e.occurred_at, e.txid, e.category, e.action, e.admin,
       e.entity_type, e.entity_id, e.previous_entity_id, e.caused_by,
       e.actor_id, e.actor_email, e.actor_role,
       e.ip_address, e.ip_address_raw, e.user_agent, e.request_id,
       e.db_user, e.application_name, e.client_addr,
       CASE WHEN e.category = 'data' AND e.action = 'updated'
            THEN coalesce(e.changed_columns, ARRAY(SELECT jsonb_object_keys(e.before))) END
           AS changed_columns,
       CASE WHEN e.category = 'data' AND e.action = 'updated' AND NOT e.admin
            THEN e.after || e.before ELSE e.before END AS before,
       e.after
FROM "audit".events AS e;

COMMENT ON VIEW "audit".history IS 'auditsql: events with whole before and after rows, and the changed columns of updates';

-- envelope: each event as one jsonb document in the shape compliance tools
-- and SIEMs take, with whole before and after rows (from history):
--   {id, occurredAt, category, action, admin,
--    actor: {userId, email, role},
--    resource: {entityType, entityId},
--    changes: {before, after, changedColumns},
--    metadata: {ipAddress, userAgent, requestId, dbUser, applicationName,
--               clientAddr, transactionId, causedBy}}
-- Absent values are JSON null; occurredAt is ISO 8601 with its offset.
CREATE OR REPLACE VIEW "audit".envelope AS
SELECT h.id, h.occurred_at,
       jsonb_build_object(
           'id', h.id,
           'occurredAt', to_jsonb(h.occurred_at),
           'category', h.category,
           'action', h.action,
           'admin', h.admin,
           'actor', jsonb_build_object('userId', h.actor_id, 'email', h.actor_email, 'role', h.actor_role),
           'resource', jsonb_build_object('entityType', h.entity_type, 'entityId', h.entity_id),
           'changes', jsonb_build_object('before', h.before, 'after', h.after,
                                         'changedColumns', to_jsonb(h.changed_columns)),
           'metadata', jsonb_build_object('ipAddress', coalesce(host(h.ip_address), h.ip_address_raw),
                                          'userAgent', h.user_agent, 'requestId', h.request_id,
                                          'dbUser', h.db_user, 'applicationName', h.application_name,
                                          'clientAddr', host(h.client_addr),
                                          'transactionId', h.txid, 'causedBy', h.caused_by)
       ) AS event
FROM "audit".history AS h;

COMMENT ON VIEW "audit".envelope IS 'auditsql: each event as one jsonb document (actor, resource, changes, metadata)';

-- retention: the retention policy, one row at most. `keep` is how long
-- events are kept; `policy` names it (financial, medical, saas) or says
-- custom. Written only by set_retention(), which also records the change as
-- a `retention_policy_set` event; read by apply_retention() and status.
CREATE TABLE IF NOT EXISTS "audit".retention (
    singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    policy    text        NOT NULL CHECK (policy IN ('financial', 'medical', 'saas', 'custom')),
    keep      interval    NOT NULL CHECK (keep > interval '0'),
    set_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by    text        NOT NULL DEFAULT pg_catalog."session_user"()
);
COMMENT ON TABLE "audit".retention IS 'auditsql: the retention policy (one row at most)';

-- legal_holds: entities under legal hold. Their events survive retention
-- (see apply_retention). A row exists while the hold is in force; placing
-- and releasing a hold are recorded in the log as `legal_hold_placed` and
-- `legal_hold_released` events, which are the history of holds.
CREATE TABLE IF NOT EXISTS "audit".legal_holds (
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    reason      text        NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by   text        NOT NULL DEFAULT pg_catalog."session_user"(),
    PRIMARY KEY (entity_type, entity_id)
);
COMMENT ON TABLE "audit".legal_holds IS 'auditsql: entities whose events retention keeps';

-- inet_or_null: the inet value of p_text, or NULL when p_text is NULL or not
-- a valid address. Capture uses it so that a malformed auditsql.ip_address
-- never aborts the user's transaction (the raw text goes to ip_address_raw).
-- PL/pgSQL on purpose: a SQL function body may be inlined and its cast
-- folded at plan time, before any validity test runs.
CREATE OR REPLACE FUNCTION "audit".inet_or_null(p_text text)
RETURNS inet
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN p_text::inet;
EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
    RETURN NULL;
END
$fn$;

-- guard: trigger function that refuses any UPDATE, DELETE or TRUNCATE of the
-- audit log, whoever asks. Installed as ENABLE ALWAYS triggers, so neither
-- privileges nor session_replication_role lift it; only an explicit
-- ALTER TABLE ... DISABLE TRIGGER by the owner or a superuser does.
CREATE OR REPLACE FUNCTION "audit".guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'auditsql: the audit log is append-only; % on %.% is not allowed',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit events are removed only by the retention policy.';
END
$fn$;

-- event_partitions: the partitions of events with their bounds, read from
-- the catalog. range_from / range_to are NULL for the default partition;
-- MINVALUE and MAXVALUE bounds read as -infinity and infinity. Catalog only,
-- and it opens no partition (bounds hold no column references, so
-- pg_get_expr needs no relation), so it never waits for maintenance or
-- retention: the reader role may call it.
CREATE OR REPLACE FUNCTION "audit".event_partitions()
RETURNS TABLE (partition regclass, name text, range_from timestamptz, range_to timestamptz,
               is_default boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
AS $fn$
    SELECT c.oid::regclass, c.relname::text,
           CASE b.v[1] WHEN 'MINVALUE' THEN '-infinity' ELSE btrim(b.v[1], '''') END::timestamptz,
           CASE b.v[2] WHEN 'MAXVALUE' THEN 'infinity' ELSE btrim(b.v[2], '''') END::timestamptz,
           x.bound = 'DEFAULT'
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, 0) AS bound) AS x
    LEFT JOIN LATERAL (SELECT regexp_match(x.bound, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS v) AS b
        ON true
    WHERE i.inhparent = '"audit".events'::regclass
    ORDER BY 3 NULLS LAST, 2;
$fn$;

-- create_partition: create the table that is to become the events partition
-- for [p_from, p_to), not yet attached, so that it can be filled before
-- anyone sees it. It has the log's columns, defaults, constraints and
-- indexes (LIKE), a CHECK constraint equal to its bound (so ATTACH PARTITION
-- need not scan it; attach_partition drops it), the statement guard, and
-- the log's privileges: nothing for PUBLIC, no UPDATE, DELETE or TRUNCATE
-- for the owner. The row guard is cloned onto it by ATTACH PARTITION. Runs
-- with the caller's rights; called by ensure_partitions, maintain and
-- apply_retention, which run as the owner.
CREATE OR REPLACE FUNCTION "audit".create_partition(
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
                   'audit', p_name, 'audit',
                   p_name || '_bound', p_from, p_to);
    EXECUTE format('CREATE TRIGGER auditsql_guard_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %I.guard()',
                   'audit', p_name, 'audit');
    EXECUTE format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER auditsql_guard_statement',
                   'audit', p_name);
    EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', 'audit', p_name);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.%I FROM %I',
                   'audit', p_name, 'auditsql_owner');
    RETURN format('%I.%I', 'audit', p_name)::regclass;
END
$fn$;

-- drop_bound_check: drop the CHECK constraint create_partition gave an
-- events partition (named after it, <partition>_bound) once the partition
-- is attached and its bound enforces the same range. Nothing happens when
-- the constraint is gone already. Runs with the caller's rights; called by
-- attach_partition, and by install for partitions attached by an earlier
-- version.
CREATE OR REPLACE FUNCTION "audit".drop_bound_check(p_partition regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_name name;
BEGIN
    SELECT k.conname INTO v_name
    FROM pg_constraint AS k
    JOIN pg_class AS c ON c.oid = k.conrelid
    WHERE k.conrelid = p_partition AND k.contype = 'c' AND c.relispartition
      AND k.conname = c.relname || '_bound';
    IF FOUND THEN
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', p_partition, v_name);
    END IF;
END
$fn$;

-- attach_partition: attach a table made by create_partition to the log as
-- the partition for [p_from, p_to) (SHARE UPDATE EXCLUSIVE on the log; its
-- CHECK constraint spares the scan), drop that CHECK constraint, then stamp
-- the partition and its statement guard with their fingerprints. Once
-- attached, the partition bound says what the constraint said, and the
-- constraint would cost every insert into the partition an expression
-- compiled and evaluated per statement (see docs/performance.md); the
-- partition is already locked ACCESS EXCLUSIVE by the attach. Runs with the caller's rights;
-- called by ensure_partitions, maintain and apply_retention, which run as
-- the owner and let their DDL past the event triggers (auditsql.permit_ddl).
CREATE OR REPLACE FUNCTION "audit".attach_partition(
    p_partition regclass,
    p_from      timestamptz,
    p_to        timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %I.events ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   'audit', p_partition, p_from, p_to);
    PERFORM "audit".drop_bound_check(p_partition);
    PERFORM "audit".stamp('pg_catalog.pg_class'::regclass, ARRAY[p_partition::oid]);
    PERFORM "audit".stamp('pg_catalog.pg_trigger'::regclass, array_agg(g.oid))
    FROM pg_trigger AS g
    WHERE g.tgrelid = p_partition AND g.tgname = 'auditsql_guard_statement';
END
$fn$;

-- lock_log: take a table lock on the log or one of its partitions. Before
-- PostgreSQL 17 LOCK TABLE in any mode above ROW EXCLUSIVE needs UPDATE,
-- DELETE or TRUNCATE on the table, which nobody holds on the log, the owner
-- included; so the owner is granted UPDATE for the LOCK statement alone and
-- it is revoked at once. The lock stays until the transaction ends; the
-- privilege does not outlive this call, no other session ever sees it, and
-- the guard triggers refuse UPDATE anyway. Runs with the caller's rights;
-- called by maintain and apply_retention, which run as the owner.
CREATE OR REPLACE FUNCTION "audit".lock_log(p_table regclass, p_mode text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    EXECUTE format('GRANT UPDATE ON %s TO %I', p_table, 'auditsql_owner');
    CASE p_mode
        WHEN 'SHARE UPDATE EXCLUSIVE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', p_table);
        WHEN 'SHARE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN SHARE MODE', p_table);
        WHEN 'SHARE ROW EXCLUSIVE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', p_table);
        WHEN 'ACCESS EXCLUSIVE' THEN
            EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', p_table);
    END CASE;
    EXECUTE format('REVOKE UPDATE ON %s FROM %I', p_table, 'auditsql_owner');
END
$fn$;

-- ensure_partitions: create the monthly partitions of events covering p_from
-- and the p_months - 1 months after it (UTC months), each named
-- events_YYYY_MM and guarded like the log. A month already covered by a
-- partition is left alone; a month whose rows already sit in the default
-- partition is skipped with a warning (attaching it would fail): maintain()
-- moves such rows out. Returns the names of the partitions it created.
-- Each partition is created apart and then attached (ATTACH PARTITION takes
-- SHARE UPDATE EXCLUSIVE on the log, so writers and readers go on; the
-- default partition is locked for a moment while it is checked), and stamped
-- with its fingerprint. Runs as the owner so that every partition belongs to
-- it, whoever calls; auditsql.permit_ddl lets the DDL past the event triggers.
CREATE OR REPLACE FUNCTION "audit".ensure_partitions(
    p_from   timestamptz DEFAULT now(),
    p_months integer     DEFAULT 2)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_start timestamptz;
    v_end   timestamptz;
    v_name  text;
    v_rel    regclass;
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF p_months IS NULL OR p_months < 1 THEN
        RAISE EXCEPTION 'ensure_partitions: p_months must be at least 1, not %', p_months
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_from IS NULL OR NOT isfinite(p_from) THEN
        RAISE EXCEPTION 'ensure_partitions: p_from must be a finite time, not %', p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    FOR i IN 0 .. p_months - 1 LOOP
        v_start := (date_trunc('month', p_from AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        v_end   := (date_trunc('month', p_from AT TIME ZONE 'UTC') + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        v_name  := 'events_' || to_char(v_start AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN EXISTS (SELECT FROM "audit".event_partitions() AS p
                              WHERE NOT p.is_default AND p.range_from < v_end AND p.range_to > v_start);
        IF EXISTS (SELECT FROM "audit".events_default
                   WHERE occurred_at >= v_start AND occurred_at < v_end) THEN
            RAISE WARNING 'auditsql: partition % not created: the default partition holds events of that month; run maintain() to move them', v_name;
            CONTINUE;
        END IF;
        v_rel := "audit".create_partition(v_name, v_start, v_end);
        PERFORM "audit".attach_partition(v_rel, v_start, v_end);
        RETURN NEXT v_name;
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;

-- set_actor: name who is acting in the current transaction. Sets the
-- transaction-local settings auditsql.actor_id, auditsql.actor_email and
-- auditsql.actor_role, read by every event the transaction writes; they end
-- with the transaction. NULL clears a value; a value longer than 1024
-- characters is refused. Any role may call it: values are data, stored as
-- given.
CREATE OR REPLACE FUNCTION "audit".set_actor(
    actor_id text,
    email    text DEFAULT NULL,
    role     text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF length(actor_id) > 1024 OR length(email) > 1024 OR length(role) > 1024 THEN
        RAISE EXCEPTION 'auditsql: actor values are limited to 1024 characters'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    PERFORM set_config('auditsql.actor_id', coalesce(actor_id, ''), true),
            set_config('auditsql.actor_email', coalesce(email, ''), true),
            set_config('auditsql.actor_role', coalesce(role, ''), true);
END
$fn$;

-- set_request: describe the request behind the current transaction. Sets
-- the transaction-local settings auditsql.ip_address, auditsql.user_agent and
-- auditsql.request_id. An ip_address that is not a valid inet does not fail
-- here or later: events store NULL in ip_address and the text as given in
-- ip_address_raw. NULL clears a value; a value longer than 1024 characters
-- is refused. Any role may call it.
CREATE OR REPLACE FUNCTION "audit".set_request(
    ip_address text,
    user_agent text DEFAULT NULL,
    request_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF length(ip_address) > 1024 OR length(user_agent) > 1024 OR length(request_id) > 1024 THEN
        RAISE EXCEPTION 'auditsql: request values are limited to 1024 characters'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    PERFORM set_config('auditsql.ip_address', coalesce(ip_address, ''), true),
            set_config('auditsql.user_agent', coalesce(user_agent, ''), true),
            set_config('auditsql.request_id', coalesce(request_id, ''), true);
END
$fn$;

-- check_json_casts: true, or an error if a cast to json or jsonb of a
-- user-defined type runs a function owned by an ordinary role.
-- Capture runs with the owner's rights, and to_jsonb() converts a value of a
-- user-defined type through its cast to json or jsonb when one exists: such
-- a cast would run the function as the owner. Capture then refuses (and so
-- fails the write) rather than run it. Casts whose function belongs to a
-- superuser (extensions such as hstore) are trusted. Generated capture code
-- calls this only when a cheaper test has found a candidate cast.
CREATE OR REPLACE FUNCTION "audit".check_json_casts()
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cast text;
BEGIN
    SELECT format('%s -> %s (function %s)', c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure)
      INTO v_cast
    FROM pg_cast AS c
    JOIN pg_proc AS p ON p.oid = c.castfunc
    JOIN pg_roles AS r ON r.oid = p.proowner
    WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype)
      AND c.castsource >= 16384
      AND NOT r.rolsuper
    LIMIT 1;
    IF v_cast IS NOT NULL THEN
        RAISE EXCEPTION 'auditsql: refusing to capture: the cast % is owned by an ordinary role, and capture would run it with audit rights', v_cast
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the cast, or have a superuser own its function.';
    END IF;
    RETURN true;
END
$fn$;

-- pin_image_settings: pin the settings that shape the text of row images,
-- for the rest of the capture call, and return what they were (for
-- restore_image_settings). A session's choices must not round floats
-- (extra_float_digits), flip the sign of an interval's time part on the way
-- back (IntervalStyle), or change how bytea is spelled (bytea_output).
-- Capture calls it only when a setting differs, which in the usual case
-- costs three comparisons; a SET clause on the capture function would cost
-- every call a save and a restore. Values are set transaction-locally.
CREATE OR REPLACE FUNCTION "audit".pin_image_settings()
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was text[] := ARRAY[current_setting('extra_float_digits'),
                          current_setting('IntervalStyle'),
                          current_setting('bytea_output')];
BEGIN
    PERFORM set_config('extra_float_digits', '1', true),
            set_config('IntervalStyle', 'postgres', true),
            set_config('bytea_output', 'hex', true);
    RETURN v_was;
END
$fn$;

-- restore_image_settings: put back the settings pin_image_settings found
-- (p_was, in its order), so the user's transaction sees its own values again.
CREATE OR REPLACE FUNCTION "audit".restore_image_settings(p_was text[])
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


-- changed_values: the old values of the columns whose values differ between
-- two row images, as a jsonb object ('{}' when none), with the columns in
-- p_redact shown as the redaction marker. Values are compared in their jsonb
-- text form, so 1.0 and 1.00 differ, as they do in the row. Generated
-- capture code compares the columns it knows one by one and calls this only
-- for a row with columns it does not know (the table was altered after
-- attach).
CREATE OR REPLACE FUNCTION "audit".changed_values(p_old jsonb, p_new jsonb, p_redact text[])
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce(jsonb_object_agg(o.key, CASE WHEN o.key = ANY (p_redact)
                                                 THEN to_jsonb('[redacted]'::text)
                                                 ELSE o.value END), '{}')
    FROM jsonb_each(p_old) AS o
    WHERE (p_new -> o.key)::text IS DISTINCT FROM o.value::text
$fn$;

-- key_expression: SQL text of a row's entity_id, computed from its jsonb
-- image, for generated capture code (see capture_source).
--   p_image  the image expression, such as s.nj (trusted: from capture_source)
--   p_keys   the key columns, in key order (quoted here)
-- One key column gives its value as text; several give a JSON array of the
-- values in key order, as text, such as [42, "eu"].
CREATE OR REPLACE FUNCTION "audit".key_expression(
    p_image text,
    p_keys  text[])
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN cardinality(p_keys) = 1
                THEN format('(%s OPERATOR(pg_catalog.->>) %s::pg_catalog.text)', p_image, quote_literal(p_keys[1]))
                ELSE format('pg_catalog.jsonb_build_array(%s)::pg_catalog.text',
                            (SELECT string_agg(format('%s OPERATOR(pg_catalog.->) %s::pg_catalog.text', p_image, quote_literal(k.col)),
                                               ', ' ORDER BY k.ord)
                             FROM unnest(p_keys) WITH ORDINALITY AS k(col, ord)))
           END
$fn$;


-- capture_source: the body of a table's capture function, capture_<table
-- oid> in the audit schema, from what audit.tables records for the table
-- (key, capture mode, column policies) and audit.settings (admin roles,
-- require_actor). The template is sql/templates/capture.sql; its placeholders are
-- format()'s arguments 1-21 below, in that order. attach creates the function
-- from this; status compares it with the installed body to tell whether the
-- function is current (it is not after ALTER TABLE or a settings change made
-- without configure()).
-- Every piece taken from the catalog or the tables is quoted here, by
-- format('%I'), quote_literal() or %L; the template is fixed at install.
-- The column list is the table's as it is now: the function compares those
-- columns one by one, and falls back to a generic comparison for a row that
-- has columns it does not know (added or renamed since attach).
CREATE OR REPLACE FUNCTION "audit".capture_source(p_table regclass)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_table       "audit".tables;
    v_settings    "audit".settings;
    v_kind        "char";
    v_all         text[];
    v_kept        text[];
    v_entity_type text;
    v_diff        text;
    v_changed     text;
    v_returning   text;
    v_on_change   text := '';
    v_admin_oc    text := '';
    v_checks      text := '';
    v_redaction   text := '';
    v_pin_when    text;
    v_same        text;
    v_typed_old   text;
    v_typed_new   text;
    v_signature   text[];
BEGIN
    SELECT * INTO v_table FROM "audit".tables WHERE relid = p_table;
    SELECT * INTO v_settings FROM "audit".settings;
    SELECT c.relkind INTO v_kind FROM pg_class AS c WHERE c.oid = p_table;

    -- One comparison per column. Booleans, integers and types that become
    -- JSON strings compare exactly as jsonb; other numbers compare by value
    -- as jsonb (1.0 = 1.00, -0 = 0), and so may values nested in arrays,
    -- json or rows, so those compare as text. A redacted column absent from
    -- both images (dropped since attach) counts as unchanged. x.cmp is the
    -- comparison as a format() pattern over the column name (1), the old
    -- image (2) and the new one (3): row capture compares the images s.oj
    -- and s.nj, statement capture the paired images p.oj and p.nj.
    -- Statement capture compares as they are, without taking the images
    -- apart, the columns whose type's equality is equality of their JSON
    -- image (booleans, integers, oid, dates and timestamps, uuid, and text
    -- under a deterministic collation), and numeric columns by their text
    -- (1.0 and 1.00 differ), while the table has exactly the columns of
    -- attach time (v_signature). x.typed is that comparison as a format()
    -- pattern over the column's number, or NULL; base.oid is the column's type
    -- seen through one domain.
    -- The row-image settings (fragments/image_settings.sql) shape only the
    -- text of floats and of what is built on them (geometric types),
    -- intervals and bytea: the pin check is generated unless every column
    -- is of a type known not to depend on them (l: the column's type looked
    -- at through one domain and one array level; rows, ranges and other
    -- types count as dependent).
    SELECT array_agg(a.attname::text ORDER BY a.attnum),
           array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attname <> ALL (v_table.exclude)),
           string_agg(format(x.cmp, quote_literal(a.attname), 's.oj', 's.nj'),
                      E',\n                             ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> ALL (v_table.exclude)),
           string_agg(format(
               'CASE WHEN COALESCE((s.oj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (s.nj OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text, true) THEN NULL ELSE %1$s END',
               quote_literal(a.attname)), E',\n                             ' ORDER BY a.attnum),
           CASE WHEN bool_and(l.typtype = 'e' OR (l.oid = ANY ('{16,18,19,20,21,23,25,26,114,142,650,774,829,869,1042,1043,1082,1083,1114,1184,1266,1560,1562,1700,2950,3802}'::oid[]))) THEN 'false'
                ELSE 'pg_catalog.current_setting(''extra_float_digits'') OPERATOR(pg_catalog.<>) ''1''
       OR pg_catalog.current_setting(''IntervalStyle'') OPERATOR(pg_catalog.<>) ''postgres''
       OR pg_catalog.current_setting(''bytea_output'') OPERATOR(pg_catalog.<>) ''hex''' END,
           'ARRAY[' || coalesce(string_agg(
               CASE WHEN x.typed IS NOT NULL
                    THEN format('CASE WHEN ' || x.typed || ' OR (p.o%1$s IS NULL AND p.n%1$s IS NULL) THEN %2$s END',
                                a.attnum, quote_literal(a.attname))
                    ELSE format(x.cmp, quote_literal(a.attname), 'p.oj', 'p.nj') END,
               E',\n                             ' ORDER BY a.attnum)
               FILTER (WHERE a.attname <> ALL (v_table.exclude)), '') || ']::pg_catalog.text[]',
           string_agg(format(', auditsql_old.%I AS o%s', a.attname, a.attnum), '' ORDER BY a.attnum)
               FILTER (WHERE x.typed IS NOT NULL AND a.attname <> ALL (v_table.exclude)),
           string_agg(format(', auditsql_new.%I AS n%s', a.attname, a.attnum), '' ORDER BY a.attnum)
               FILTER (WHERE x.typed IS NOT NULL AND a.attname <> ALL (v_table.exclude))
      INTO v_all, v_kept, v_diff, v_changed, v_pin_when, v_same, v_typed_old, v_typed_new
    FROM pg_attribute AS a
    JOIN pg_type AS ty ON ty.oid = a.atttypid
    LEFT JOIN pg_type AS b ON b.oid = ty.typbasetype
    LEFT JOIN pg_type AS e ON e.oid = coalesce(b.typelem, ty.typelem)
                          AND coalesce(b.typsubscript, ty.typsubscript) = 'pg_catalog.array_subscript_handler'::regproc
    LEFT JOIN pg_type AS eb ON eb.oid = e.typbasetype
    JOIN pg_type AS l ON l.oid = coalesce(eb.oid, e.oid, b.oid, ty.oid)
    LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
    CROSS JOIN LATERAL (SELECT coalesce(b.oid, ty.oid) AS oid) AS base
    CROSS JOIN LATERAL (SELECT
        CASE WHEN a.attname = ANY (v_table.redact)
             THEN 'CASE WHEN COALESCE((%2$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (%3$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text, true) THEN %1$s END'
             WHEN base.oid = ANY ('{16,17,18,19,20,21,23,25,26,650,829,869,1042,1043,1082,1083,1114,1184,1186,1266,2950}'::oid[])
             THEN 'CASE WHEN (%2$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text) OPERATOR(pg_catalog.=) (%3$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text) THEN %1$s END'
             ELSE 'CASE WHEN (%2$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text OPERATOR(pg_catalog.=) (%3$s OPERATOR(pg_catalog.->) %1$s::pg_catalog.text)::pg_catalog.text THEN %1$s END'
        END AS cmp,
        CASE WHEN base.oid = ANY ('{16,18,20,21,23,26,1082,1114,1184,2950}'::oid[])
                  OR (base.oid = ANY ('{19,25,1043}'::oid[]) AND coalesce(co.collisdeterministic, false))
             THEN 'p.o%1$s OPERATOR(pg_catalog.=) p.n%1$s'
             WHEN base.oid = 1700
             THEN 'p.o%1$s::pg_catalog.text OPERATOR(pg_catalog.=) p.n%1$s::pg_catalog.text'
        END AS typed
    ) AS x
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;
    v_signature := ARRAY(SELECT ROW(a.attnum, a.atttypid, a.attcollation, a.attname)::pg_catalog.text
                         FROM pg_catalog.pg_attribute AS a
                         WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
                           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                         ORDER BY a.attnum);

    IF v_kind = 'p' THEN
        -- Row triggers fire on the partition that holds the row; events name
        -- the root, looked up by oid so that a rename is followed.
        v_entity_type := format(
            '(SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) ''.'' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)'
            ' FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace'
            ' WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid)', p_table::oid);
    ELSE
        -- One function call: each call in a statement the capture runs per
        -- event costs that statement a lookup when it starts.
        v_entity_type := 'pg_catalog.format(''%I.%I'', TG_TABLE_SCHEMA, TG_TABLE_NAME)';
    END IF;

    IF v_table.redact <> '{}' THEN
        -- Laid over an image: each redacted column shows the marker.
        v_redaction := format(' OPERATOR(pg_catalog.||) %L::pg_catalog.jsonb',
            (SELECT jsonb_object_agg(r, '[redacted]'::text) FROM unnest(v_table.redact) AS r));
    END IF;

    -- Checks before anything is recorded: a required actor, and for a
    -- partitioned table that the trigger fires inside its tree.
    IF v_table.require_actor OR v_settings.require_actor THEN
        v_checks := 'IF COALESCE(pg_catalog.current_setting(''auditsql.actor_id'', true), '''') OPERATOR(pg_catalog.=) '''' THEN
        RAISE EXCEPTION ''auditsql: % on % needs an actor: this table accepts attributed writes only'', TG_OP, TG_TABLE_NAME
            USING ERRCODE = ''invalid_authorization_specification'',
                  HINT = ' || quote_literal(format('Name the actor in the same transaction first: SELECT %I.set_actor(...).',
                                                   'audit')) || ';
    END IF;';
    END IF;

    IF v_kind = 'p' THEN
        -- The partitioned table's owner may execute this function (PostgreSQL
        -- checks that when it clones the trigger onto a new partition); on a
        -- table outside the tree it refuses, so that it cannot record other
        -- rows under this table's name.
        v_checks := v_checks || format(
            E'\n    IF COALESCE(pg_catalog.pg_partition_root(TG_RELID)::pg_catalog.oid OPERATOR(pg_catalog.<>) %s::pg_catalog.oid, true) THEN'
            || E'\n        RAISE EXCEPTION ''auditsql: this capture function records %%, not %%'', %L, TG_TABLE_NAME'
            || E'\n            USING ERRCODE = ''insufficient_privilege'';'
            || E'\n    END IF;', p_table::oid, p_table::text);
    END IF;

    IF v_table.on_change <> '{}' THEN
        -- The data event, then one auth event per changed on-change column,
        -- in the same statement; each names the data event in caused_by.
        v_returning := format(
            E'\n            RETURNING id, entity_type, entity_id, before, after, changed_columns, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)'
            || E'\n        INSERT INTO %I.events (category, action, caused_by, entity_type, entity_id, before, after, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)'
            || E'\n        SELECT ''auth'', x.action, ins.id, ins.entity_type, ins.entity_id,'
            || E'\n               pg_catalog.jsonb_build_object(x.col, ins.before OPERATOR(pg_catalog.->) x.col),'
            || E'\n               pg_catalog.jsonb_build_object(x.col, ins.after OPERATOR(pg_catalog.->) x.col),'
            || E'\n               ins.admin, ins.actor_id, ins.actor_email, ins.actor_role, ins.ip_address, ins.ip_address_raw, ins.user_agent, ins.request_id, ins.application_name, ins.client_addr'
            || E'\n        FROM ins, (VALUES %s) AS x(col, action)',
            'audit',
            (SELECT string_agg(format('(%L::pg_catalog.text, %L::pg_catalog.text)', o.key, o.value), ', ' ORDER BY o.key)
             FROM jsonb_each_text(v_table.on_change) AS o));
        v_on_change := v_returning || E'\n        WHERE ins.before OPERATOR(pg_catalog.?) x.col';
        v_admin_oc := v_returning || E'\n        WHERE ins.changed_columns OPERATOR(pg_catalog.@>) ARRAY[x.col]';
    END IF;

    RETURN format(
        CASE v_table.capture
        WHEN 'row' THEN
            $tpl$DECLARE
    v_saved            pg_catalog.text[];
    v_ip_raw           pg_catalog.text;
    v_ip               pg_catalog.inet;
    v_admin            pg_catalog.bool := COALESCE(
        pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.=) ANY (%8$s::pg_catalog.text[]), false);
BEGIN
    %9$s
    IF %17$s THEN
        v_saved := "audit".pin_image_settings();
    END IF;
    v_ip_raw := CASE WHEN pg_catalog.current_setting('auditsql.ip_address', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.ip_address', true), 1024) END;
    IF v_ip_raw IS NOT NULL THEN
        -- A dotted quad is the common case: no function call for it.
        IF v_ip_raw OPERATOR(pg_catalog.~) '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$' THEN
            v_ip := v_ip_raw::pg_catalog.inet;
        ELSE
            v_ip := "audit".inet_or_null(v_ip_raw);
        END IF;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO "audit".events (action, entity_type, entity_id, after, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'created', %1$s, %2$s, s.nj%7$s,
                   'data', v_admin,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_email', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_email', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_role', true), 1024) END,
                   v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   CASE WHEN pg_catalog.current_setting('auditsql.user_agent', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.user_agent', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.request_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.request_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('application_name', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('application_name', true), 1024) END,
                   pg_catalog.inet_client_addr()
        FROM (SELECT pg_catalog.to_jsonb(NEW)%6$s AS nj
              WHERE (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
              OFFSET 0) AS s;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- A row left byte-for-byte unchanged records nothing.
        IF NOT (OLD OPERATOR(pg_catalog.*=) NEW) THEN
            IF v_admin THEN
                %12$sINSERT INTO "audit".events (action, entity_type, entity_id, previous_entity_id, before, after, changed_columns, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'updated', %1$s, %2$s,
                   CASE WHEN %3$s OPERATOR(pg_catalog.=) %2$s THEN NULL ELSE %3$s END,
                   s.oj%7$s, s.nj%7$s,
                   CASE WHEN (s.nj OPERATOR(pg_catalog.-) %15$s::pg_catalog.text[]) OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
                        THEN %11$s
                        ELSE ARRAY(SELECT pg_catalog.jsonb_object_keys("audit".changed_values(s.oj, s.nj, '{}'::pg_catalog.text[]))) END,
                   'data', v_admin,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_email', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_email', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_role', true), 1024) END,
                   v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   CASE WHEN pg_catalog.current_setting('auditsql.user_agent', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.user_agent', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.request_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.request_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('application_name', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('application_name', true), 1024) END,
                   pg_catalog.inet_client_addr()
                FROM (SELECT pg_catalog.to_jsonb(OLD) AS oj, pg_catalog.to_jsonb(NEW) AS nj
                      WHERE (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
                      OFFSET 0) AS s%14$s;
            ELSE
                %12$sINSERT INTO "audit".events (action, entity_type, entity_id, previous_entity_id, before, after, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'updated', %1$s, %2$s,
                   CASE WHEN %3$s OPERATOR(pg_catalog.=) %2$s THEN NULL ELSE %3$s END,
                   CASE WHEN (s.nj OPERATOR(pg_catalog.-) %4$s::pg_catalog.text[]) OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb
                        THEN %5$s
                        ELSE "audit".changed_values(s.oj, s.nj, %16$s::pg_catalog.text[]) END,
                   s.nj%7$s,
                   'data', v_admin,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_email', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_email', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_role', true), 1024) END,
                   v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   CASE WHEN pg_catalog.current_setting('auditsql.user_agent', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.user_agent', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.request_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.request_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('application_name', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('application_name', true), 1024) END,
                   pg_catalog.inet_client_addr()
                FROM (SELECT pg_catalog.to_jsonb(OLD)%6$s AS oj,
                             pg_catalog.to_jsonb(NEW)%6$s AS nj
                      WHERE (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
                      OFFSET 0) AS s
                WHERE %10$s%13$s;
            END IF;
        END IF;
    ELSE
        INSERT INTO "audit".events (action, entity_type, entity_id, before, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'deleted', %1$s, %3$s, s.oj%7$s,
                   'data', v_admin,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_email', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_email', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_role', true), 1024) END,
                   v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   CASE WHEN pg_catalog.current_setting('auditsql.user_agent', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.user_agent', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('auditsql.request_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.request_id', true), 1024) END,
                   CASE WHEN pg_catalog.current_setting('application_name', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('application_name', true), 1024) END,
                   pg_catalog.inet_client_addr()
        FROM (SELECT pg_catalog.to_jsonb(OLD)%6$s AS oj
              WHERE (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
              OFFSET 0) AS s;
    END IF;

    IF v_saved IS NOT NULL THEN
        PERFORM "audit".restore_image_settings(v_saved);
    END IF;
    RETURN NULL;
END
$tpl$
        WHEN 'statement' THEN
            $tpl$DECLARE
    v_saved            pg_catalog.text[];
    v_ip_raw           pg_catalog.text;
    v_ip               pg_catalog.inet;
    v_admin            pg_catalog.bool := COALESCE(
        pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.=) ANY (%8$s::pg_catalog.text[]), false);
    v_actor_id         pg_catalog.text := CASE WHEN pg_catalog.current_setting('auditsql.actor_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_id', true), 1024) END;
    v_actor_email      pg_catalog.text := CASE WHEN pg_catalog.current_setting('auditsql.actor_email', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_email', true), 1024) END;
    v_actor_role       pg_catalog.text := CASE WHEN pg_catalog.current_setting('auditsql.actor_role', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.actor_role', true), 1024) END;
    v_user_agent       pg_catalog.text := CASE WHEN pg_catalog.current_setting('auditsql.user_agent', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.user_agent', true), 1024) END;
    v_request_id       pg_catalog.text := CASE WHEN pg_catalog.current_setting('auditsql.request_id', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.request_id', true), 1024) END;
    v_application_name pg_catalog.text := CASE WHEN pg_catalog.current_setting('application_name', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('application_name', true), 1024) END;
    v_client_addr      pg_catalog.inet := pg_catalog.inet_client_addr();
    v_entity_type      pg_catalog.text := %1$s;
    v_exact            pg_catalog.bool;
BEGIN
    %9$s
    IF %17$s THEN
        v_saved := "audit".pin_image_settings();
    END IF;
    v_ip_raw := CASE WHEN pg_catalog.current_setting('auditsql.ip_address', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.left(pg_catalog.current_setting('auditsql.ip_address', true), 1024) END;
    IF v_ip_raw IS NOT NULL THEN
        -- A dotted quad is the common case: no function call for it.
        IF v_ip_raw OPERATOR(pg_catalog.~) '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$' THEN
            v_ip := v_ip_raw::pg_catalog.inet;
        ELSE
            v_ip := "audit".inet_or_null(v_ip_raw);
        END IF;
    END IF;
    -- Statement level, over the transition tables auditsql_old and
    -- auditsql_new (for tables attached with capture 'statement').
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO "audit".events (action, entity_type, entity_id, after, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'created', v_entity_type, %2$s, s.nj%7$s,
                   'data', v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   v_user_agent, v_request_id, v_application_name, v_client_addr
        FROM (SELECT pg_catalog.to_jsonb(auditsql_new.*)%6$s AS nj FROM auditsql_new
              WHERE (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
              OFFSET 0) AS s;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- Old and new rows are paired by position: PostgreSQL appends both
        -- images of a row to the transition tables together. Rows left
        -- byte-for-byte unchanged record nothing. Whether the table still
        -- has exactly the columns of attach time (number, name, type and
        -- collation, P signature) is asked of the catalog once per statement:
        -- then the columns are compared as they are, those of a type whose
        -- equality is equality of their JSON image directly (P typed_old,
        -- typed_new, same), with no JSON value taken apart; otherwise the
        -- images are compared generically.
        v_exact := ARRAY(SELECT ROW(a.attnum, a.atttypid, a.attcollation, a.attname)::pg_catalog.text
                         FROM pg_catalog.pg_attribute AS a
                         WHERE a.attrelid OPERATOR(pg_catalog.=) TG_RELID
                           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                         ORDER BY a.attnum)
                   OPERATOR(pg_catalog.=) %21$s::pg_catalog.text[];
        IF v_admin THEN
            %12$sINSERT INTO "audit".events (action, entity_type, entity_id, previous_entity_id, before, after, changed_columns, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'updated', v_entity_type, %2$s,
                   CASE WHEN %3$s OPERATOR(pg_catalog.=) %2$s THEN NULL ELSE %3$s END,
                   s.oj%7$s, s.nj%7$s,
                   CASE WHEN v_exact
                        THEN %11$s
                        ELSE ARRAY(SELECT pg_catalog.jsonb_object_keys("audit".changed_values(s.oj, s.nj, '{}'::pg_catalog.text[]))) END,
                   'data', v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   v_user_agent, v_request_id, v_application_name, v_client_addr
            FROM (SELECT p.oj, p.nj
                  FROM (SELECT pg_catalog.to_jsonb(o.r) AS oj,
                               pg_catalog.to_jsonb(n.r) AS nj
                        FROM (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_old.*) AS r
                              FROM auditsql_old) AS o
                        JOIN (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_new.*) AS r
                              FROM auditsql_new) AS n ON n.rn OPERATOR(pg_catalog.=) o.rn
                        WHERE NOT (o.r OPERATOR(pg_catalog.*=) n.r)
                          AND (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
                        OFFSET 0) AS p) AS s%14$s;
        ELSIF v_exact THEN
            %12$sINSERT INTO "audit".events (action, entity_type, entity_id, previous_entity_id, before, after, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'updated', v_entity_type, %2$s,
                   CASE WHEN %3$s OPERATOR(pg_catalog.=) %2$s THEN NULL ELSE %3$s END,
                   (s.oj%7$s) OPERATOR(pg_catalog.-) s.same,
                   s.nj%7$s,
                   'data', v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   v_user_agent, v_request_id, v_application_name, v_client_addr
            FROM (SELECT p.oj, p.nj, %18$s AS same
                  FROM (SELECT pg_catalog.to_jsonb(o.r)%6$s AS oj,
                               pg_catalog.to_jsonb(n.r)%6$s AS nj, o.*, n.*
                        FROM (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_old.*) AS r%19$s
                              FROM auditsql_old) AS o
                        JOIN (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_new.*) AS r%20$s
                              FROM auditsql_new) AS n ON n.rn OPERATOR(pg_catalog.=) o.rn
                        WHERE NOT (o.r OPERATOR(pg_catalog.*=) n.r)
                          AND (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
                        OFFSET 0) AS p) AS s
            WHERE %10$s%13$s;
        ELSE
            %12$sINSERT INTO "audit".events (action, entity_type, entity_id, previous_entity_id, before, after, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'updated', v_entity_type, %2$s,
                   CASE WHEN %3$s OPERATOR(pg_catalog.=) %2$s THEN NULL ELSE %3$s END,
                   "audit".changed_values(s.oj, s.nj, %16$s::pg_catalog.text[]),
                   s.nj%7$s,
                   'data', v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   v_user_agent, v_request_id, v_application_name, v_client_addr
            FROM (SELECT p.oj, p.nj
                  FROM (SELECT pg_catalog.to_jsonb(o.r)%6$s AS oj,
                               pg_catalog.to_jsonb(n.r)%6$s AS nj
                        FROM (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_old.*) AS r
                              FROM auditsql_old) AS o
                        JOIN (SELECT pg_catalog.row_number() OVER () AS rn, COALESCE(auditsql_new.*) AS r
                              FROM auditsql_new) AS n ON n.rn OPERATOR(pg_catalog.=) o.rn
                        WHERE NOT (o.r OPERATOR(pg_catalog.*=) n.r)
                          AND (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
                        OFFSET 0) AS p) AS s
            WHERE %10$s%13$s;
        END IF;
    ELSE
        INSERT INTO "audit".events (action, entity_type, entity_id, before, category, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, application_name, client_addr)
            SELECT 'deleted', v_entity_type, %3$s, s.oj%7$s,
                   'data', v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END,
                   v_user_agent, v_request_id, v_application_name, v_client_addr
        FROM (SELECT pg_catalog.to_jsonb(auditsql_old.*)%6$s AS oj FROM auditsql_old
              WHERE (NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                               WHERE c.castsource OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                                 AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
                   OR "audit".check_json_casts())
              OFFSET 0) AS s;
    END IF;

    IF v_saved IS NOT NULL THEN
        PERFORM "audit".restore_image_settings(v_saved);
    END IF;
    RETURN NULL;
END
$tpl$
        END,
        v_entity_type,
        "audit".key_expression('s.nj', v_table.id_columns),
        "audit".key_expression('s.oj', v_table.id_columns),
        quote_literal(v_kept),
        -- jsonb minus an array of keys passes over NULL elements.
        format('(s.oj%s) OPERATOR(pg_catalog.-) ARRAY[%s]::pg_catalog.text[]', v_redaction, v_diff),
        CASE WHEN v_table.exclude <> '{}'
             THEN format(' OPERATOR(pg_catalog.-) CASE WHEN v_admin THEN ''{}''::pg_catalog.text[] ELSE %L::pg_catalog.text[] END',
                         v_table.exclude)
             ELSE '' END,
        v_redaction,
        quote_literal(v_settings.admin_roles),
        v_checks,
        CASE WHEN v_table.exclude <> '{}'
             THEN '(s.oj)::pg_catalog.text OPERATOR(pg_catalog.<>) (s.nj)::pg_catalog.text'
             ELSE 'true' END,
        format('pg_catalog.array_remove(ARRAY[%s]::pg_catalog.text[], NULL::pg_catalog.text)', v_changed),
        CASE WHEN v_table.on_change <> '{}' THEN 'WITH ins AS (' ELSE '' END,
        v_on_change,
        v_admin_oc,
        quote_literal(v_all),
        quote_literal(v_table.redact),
        v_pin_when,
        v_same,
        coalesce(v_typed_old, ''),
        coalesce(v_typed_new, ''),
        quote_literal(v_signature));
END
$fn$;


-- capture_truncate: statement-level BEFORE TRUNCATE trigger. It runs after
-- TRUNCATE has locked the table and before the rows go, and records every
-- row as a `truncated` event, so their contents stay in history.
-- On an ordinary table or a leaf partition it records that table's rows. On
-- a partitioned table (TRUNCATE of the parent fires it there and on every
-- partition that has it) it records the rows of leaf partitions created
-- after attach, which have no trigger of their own yet. Events name the root
-- of the partition tree.
-- TRUNCATE is refused outside READ COMMITTED (see below).
-- Rows are read with row_security off: if row-level security would hide
-- rows from the owner role, TRUNCATE fails instead of losing them silently.
-- Column policies apply as in the generated capture functions: excluded
-- columns are left out (unless the actor is an admin), redacted ones show
-- the marker, and a table that requires an actor refuses a TRUNCATE without an actor.
-- Trigger arguments: the key columns that identify a row, in key order.
CREATE OR REPLACE FUNCTION "audit".capture_truncate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp

SET extra_float_digits = 1
SET "IntervalStyle" = postgres
SET bytea_output = hex

SET row_security = off
AS $fn$
DECLARE

    v_actor_id    text := left(nullif(current_setting('auditsql.actor_id', true), ''), 1024);
    v_actor_email text := left(nullif(current_setting('auditsql.actor_email', true), ''), 1024);
    v_actor_role  text := left(nullif(current_setting('auditsql.actor_role', true), ''), 1024);
    v_ip_raw      text := left(nullif(current_setting('auditsql.ip_address', true), ''), 1024);
    v_user_agent  text := left(nullif(current_setting('auditsql.user_agent', true), ''), 1024);
    v_request_id  text := left(nullif(current_setting('auditsql.request_id', true), ''), 1024);
    v_app_name    text := left(nullif(current_setting('application_name'), ''), 1024);
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_ip          inet := CASE WHEN v_ip_raw IS NOT NULL THEN "audit".inet_or_null(v_ip_raw) END;
    v_admin       boolean := coalesce((SELECT v_actor_role = ANY (s.admin_roles) FROM "audit".settings AS s), false);

    v_entity_type text := coalesce(pg_partition_root(TG_RELID), TG_RELID::regclass)::text;
    v_untracked   oid[];
    v_policy      record;
BEGIN

    IF TG_NARGS < 1 THEN
        RAISE EXCEPTION 'auditsql: trigger % on % has no key columns; run attach again', TG_NAME, v_entity_type;
    END IF;
    PERFORM "audit".check_json_casts();

    SELECT t.exclude, t.redact, t.require_actor OR s.require_actor AS require_actor,
           (SELECT jsonb_object_agg(r, '[redacted]'::text) FROM unnest(t.redact) AS r) AS marks
      INTO v_policy
    FROM "audit".tables AS t, "audit".settings AS s
    WHERE t.relid = coalesce(pg_partition_root(TG_RELID), TG_RELID);
    IF v_policy.require_actor AND v_actor_id IS NULL THEN
        RAISE EXCEPTION 'auditsql: % on % needs an actor: this table accepts attributed writes only', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = format('Name the actor in the same transaction first: SELECT %I.set_actor(...).', 'audit');
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE this query would see the rows of
    -- the transaction's snapshot, while TRUNCATE removes every row, including
    -- rows committed since: those would vanish unrecorded. Refuse instead.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'auditsql: TRUNCATE of audited table % needs READ COMMITTED isolation, not %', v_entity_type, current_setting('transaction_isolation')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Rows committed after this transaction began would leave no audit event. Run the TRUNCATE in a READ COMMITTED transaction, or use DELETE.';
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = TG_RELID) = 'p' THEN
        SELECT array_agg(t.relid) INTO v_untracked
        FROM pg_partition_tree(TG_RELID) AS t
        WHERE t.isleaf
          AND NOT EXISTS (SELECT FROM pg_trigger AS g
                          WHERE g.tgrelid = t.relid AND g.tgname = 'auditsql_capture_truncate');
        IF v_untracked IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    -- Partitions are read through the partitioned table, whose privileges
    -- attach granted, filtered to the untracked ones.
    EXECUTE format(
        'INSERT INTO %I.events '
        '(category, action, entity_type, entity_id, before, txid, occurred_at, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, db_user, application_name, client_addr) '
        'SELECT ''data'', ''truncated'', $1, CASE WHEN $2 THEN s.oj ->> $3
     ELSE (SELECT jsonb_agg(s.oj -> k.col ORDER BY k.ord)::text
           FROM unnest($4) WITH ORDINALITY AS k(col, ord)) END, '
        '       (s.oj - $19) || coalesce($20, ''{}''), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 '
        'FROM (SELECT to_jsonb(auditsql_rows.*) AS oj FROM %s %I.%I AS auditsql_rows '
        '      WHERE $18 IS NULL OR auditsql_rows.tableoid = ANY ($18) OFFSET 0) AS s',
        'audit', CASE WHEN v_untracked IS NULL THEN 'ONLY' ELSE '' END,
        TG_TABLE_SCHEMA, TG_TABLE_NAME)
    USING v_entity_type, TG_NARGS = 1, TG_ARGV[0], TG_ARGV, v_txid, v_now, v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END, v_user_agent, v_request_id, v_db_user, v_app_name, v_client_addr, v_untracked,
          CASE WHEN v_admin THEN '{}' ELSE v_policy.exclude END, v_policy.marks;
    RETURN NULL;
END
$fn$;

-- drop_triggers: remove every auditsql_* trigger from a table and its
-- partitions (triggers PostgreSQL cloned onto partitions go with their
-- parent). Used by attach, before it creates fresh ones, and by detach;
-- auditsql.permit_ddl lets the drops past the event triggers.
CREATE OR REPLACE FUNCTION "audit".drop_triggers(p_table regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_trigger record;
    v_permit  text := current_setting('auditsql.permit_ddl', true);
BEGIN
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    FOR v_trigger IN
        SELECT t.tgname, t.tgrelid::regclass AS rel
        FROM pg_trigger AS t
        WHERE t.tgrelid IN (SELECT p_table
                            UNION ALL
                            SELECT relid FROM pg_partition_tree(p_table))
          AND t.tgname LIKE 'auditsql\_%'
          AND NOT t.tgisinternal
          AND t.tgparentid = 0
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;

-- record_system_event: write a system event about auditing itself (a table
-- attached or detached, settings configured, retention, legal holds,
-- maintenance), with the current actor and request context; details go in
-- `after`. Runs with the caller's rights: only members of the owner role may
-- write the log.
CREATE OR REPLACE FUNCTION "audit".record_system_event(
    p_action      text,
    p_entity_type text,
    p_entity_id   text,
    p_details     jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE

    v_actor_id    text := left(nullif(current_setting('auditsql.actor_id', true), ''), 1024);
    v_actor_email text := left(nullif(current_setting('auditsql.actor_email', true), ''), 1024);
    v_actor_role  text := left(nullif(current_setting('auditsql.actor_role', true), ''), 1024);
    v_ip_raw      text := left(nullif(current_setting('auditsql.ip_address', true), ''), 1024);
    v_user_agent  text := left(nullif(current_setting('auditsql.user_agent', true), ''), 1024);
    v_request_id  text := left(nullif(current_setting('auditsql.request_id', true), ''), 1024);
    v_app_name    text := left(nullif(current_setting('application_name'), ''), 1024);
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_ip          inet := CASE WHEN v_ip_raw IS NOT NULL THEN "audit".inet_or_null(v_ip_raw) END;
    v_admin       boolean := coalesce((SELECT v_actor_role = ANY (s.admin_roles) FROM "audit".settings AS s), false);

BEGIN
    INSERT INTO "audit".events
           (category, action, entity_type, entity_id, after, txid, occurred_at, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, db_user, application_name, client_addr)
    VALUES ('system', p_action, p_entity_type, p_entity_id, p_details, v_txid, v_now, v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END, v_user_agent, v_request_id, v_db_user, v_app_name, v_client_addr);
END
$fn$;


-- action_category: the category of an event action named by an application
-- (log_event) or an on-change policy: 'auth' for the authentication actions
-- below, 'app' for any other. Raises for a name that is not lower-case
-- letters, digits and underscores (1 to 63 of them, starting with a letter),
-- and for the actions auditsql writes itself, which applications may not
-- forge: data changes and events about auditing.
CREATE OR REPLACE FUNCTION "audit".action_category(p_action text)
RETURNS "audit".category
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
    IF p_action IN ('created', 'updated', 'deleted', 'truncated', 'attached', 'detached', 'configured', 'retention_policy_set', 'retention_applied', 'default_rows_moved', 'legal_hold_placed', 'legal_hold_released') THEN
        RAISE EXCEPTION 'auditsql: action % is written by auditsql itself and cannot be logged by an application', p_action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN p_action IN ('login', 'login_failed', 'logout', 'password_changed', 'password_reset', 'role_changed', 'permission_changed', 'mfa_enabled', 'mfa_disabled', 'session_revoked')
                THEN 'auth' ELSE 'app' END;
END
$fn$;


-- log_event: record an application event, such as a login, with the actor
-- and request context of the current transaction; returns its id.
--   action       login, login_failed, logout, password_changed, role_changed,
--                ... (category 'auth'; see action_category), or any other
--                name of lower-case letters, digits and underscores
--                (category 'app'). Data and system actions are refused.
--   entity_type  what the event is about, such as 'user' (optional)
--   entity_id    which one, such as '42' (optional)
--   details      anything else, stored in `after` (optional; at most 64 kB)
-- The time, the transaction, the database user and the category are set
-- here and cannot be chosen by the caller. EXECUTE is granted to the writer
-- role only; grant that role to the application roles that log events.
CREATE OR REPLACE FUNCTION "audit".log_event(
    action      text,
    entity_type text  DEFAULT NULL,
    entity_id   text  DEFAULT NULL,
    details     jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE

    v_actor_id    text := left(nullif(current_setting('auditsql.actor_id', true), ''), 1024);
    v_actor_email text := left(nullif(current_setting('auditsql.actor_email', true), ''), 1024);
    v_actor_role  text := left(nullif(current_setting('auditsql.actor_role', true), ''), 1024);
    v_ip_raw      text := left(nullif(current_setting('auditsql.ip_address', true), ''), 1024);
    v_user_agent  text := left(nullif(current_setting('auditsql.user_agent', true), ''), 1024);
    v_request_id  text := left(nullif(current_setting('auditsql.request_id', true), ''), 1024);
    v_app_name    text := left(nullif(current_setting('application_name'), ''), 1024);
    v_client_addr inet := inet_client_addr();
    v_db_user     text := session_user;
    v_txid        bigint := txid_current();
    v_now         timestamptz := statement_timestamp();
    v_ip          inet := CASE WHEN v_ip_raw IS NOT NULL THEN "audit".inet_or_null(v_ip_raw) END;
    v_admin       boolean := coalesce((SELECT v_actor_role = ANY (s.admin_roles) FROM "audit".settings AS s), false);

    v_category "audit".category := "audit".action_category(log_event.action);
    v_id       bigint;
BEGIN
    IF length(log_event.entity_type) > 1024 OR length(log_event.entity_id) > 1024 THEN
        RAISE EXCEPTION 'auditsql: entity_type and entity_id are limited to 1024 characters'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF octet_length(log_event.details::text) > 65536 THEN
        RAISE EXCEPTION 'auditsql: event details are limited to 64 kB of JSON text, got % bytes', octet_length(log_event.details::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO "audit".events
           (category, action, entity_type, entity_id, after, txid, occurred_at, admin, actor_id, actor_email, actor_role, ip_address, ip_address_raw, user_agent, request_id, db_user, application_name, client_addr)
    VALUES (v_category, log_event.action, log_event.entity_type, log_event.entity_id, log_event.details,
            v_txid, v_now, v_admin, v_actor_id, v_actor_email, v_actor_role, v_ip, CASE WHEN v_ip IS NULL THEN v_ip_raw END, v_user_agent, v_request_id, v_db_user, v_app_name, v_client_addr)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$fn$;

-- attach: start auditing a table. Idempotent: attaching again regenerates
-- the capture function and the triggers, and updates the key columns and the
-- capture mode.
--   p_table       the table; a regclass, so PostgreSQL resolves and checks the name
--   p_id_columns  columns that identify a row, for a table without a primary
--                 key (or to override it); NULL means the primary key
--   p_capture     'row' or 'statement'; NULL keeps the table's current mode
--                 ('row' for a table not attached yet)
--   p_exclude     columns never stored; an update that changes nothing else
--                 records nothing
--   p_redact      columns stored as the marker '[redacted]' in before and
--                 after; a change still shows in changed_columns
--   p_on_change   {"column": "action"}: an update that changes the column
--                 also records an auth event with that action, carrying the
--                 column's before and after and the data event's id (caused_by)
--   p_strict      require an actor: a write without one in context fails
-- For each policy NULL keeps what the table has ('{}' or false for a table
-- not attached yet); an empty value clears it. Key columns can be neither
-- excluded nor redacted, and an excluded column cannot have an on-change
-- action. Events of an admin actor (see configure) ignore exclusions.
-- Each table gets its own capture function, capture_<table oid> in the audit
-- schema, generated from its columns and key (see capture_source). In 'row' mode it
-- runs as an AFTER ... FOR EACH ROW trigger: the cheapest for the one-row
-- statements of OLTP, and the only mode for partitioned tables (PostgreSQL
-- clones the trigger onto every partition, present and future). In
-- 'statement' mode it runs as three statement-level AFTER triggers over
-- transition tables: one INSERT per statement, the cheapest for bulk writes.
-- Every table, and each leaf partition, also gets a BEFORE TRUNCATE trigger
-- (partitions created later are covered by the one on the table when it is
-- truncated; run attach again to cover a TRUNCATE of such a partition
-- alone). All triggers are named auditsql_* and ENABLE ALWAYS, so
-- session_replication_role = replica does not silence them. The owner role is
-- granted SELECT on the table and its partitions, and USAGE on their
-- schemas, so that TRUNCATE can record the rows it removes; detach revokes
-- exactly what attach granted. The capture function and each trigger are
-- stamped with their fingerprint (see stamp). Runs with the caller's rights:
-- the caller must be able to create triggers on the table and be a member of
-- the owner role; auditsql.permit_ddl lets its DDL past the event triggers.
DROP FUNCTION IF EXISTS "audit".attach(regclass, text[]);
DROP FUNCTION IF EXISTS "audit".attach(regclass, text[], text);
CREATE OR REPLACE FUNCTION "audit".attach(
    p_table      regclass,
    p_id_columns text[]  DEFAULT NULL,
    p_capture    text    DEFAULT NULL,
    p_exclude    text[]  DEFAULT NULL,
    p_redact     text[]  DEFAULT NULL,
    p_on_change  jsonb   DEFAULT NULL,
    p_strict     boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rel         pg_class;
    v_name        text := p_table::text;
    v_keys        text[];
    v_source      text;
    v_args        text;
    v_member      record;
    v_granted     boolean;
    v_usage       oid[];
    v_col         text;
    v_was         "audit".tables;
    v_capture     text;
    v_now         "audit".tables;
    v_policy      record;
    v_function    text  := format('%I.%I', 'audit', 'capture_' || p_table::oid);
    v_permit      text := current_setting('auditsql.permit_ddl', true);
BEGIN
    SELECT * INTO v_rel FROM pg_class WHERE oid = p_table;
    IF v_rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'auditsql: % is not a table; only ordinary and partitioned tables can be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF v_rel.relpersistence = 't' THEN
        RAISE EXCEPTION 'auditsql: % is a temporary table and cannot be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF (SELECT nspname FROM pg_namespace WHERE oid = v_rel.relnamespace)
       IN ('pg_catalog', 'information_schema', 'pg_toast', 'audit') THEN
        RAISE EXCEPTION 'auditsql: % is a system or audit table and cannot be audited', v_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach tables: it must be a member of %', current_user, 'auditsql_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(current_user, v_rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach %: only its owner (%) can', current_user, v_name, v_rel.relowner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_rel.relispartition THEN
        RAISE EXCEPTION 'auditsql: % is a partition of %; attach the partitioned table instead, which covers all its partitions',
            v_name, pg_partition_root(p_table)
            USING ERRCODE = 'wrong_object_type';
    END IF;

    IF p_id_columns IS NOT NULL THEN
        IF cardinality(p_id_columns) = 0 THEN
            RAISE EXCEPTION 'auditsql: the id columns for % must name at least one column', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOREACH v_col IN ARRAY p_id_columns LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute
                           WHERE attrelid = p_table AND attname = v_col
                             AND attnum > 0 AND NOT attisdropped) THEN
                RAISE EXCEPTION 'auditsql: table % has no column %', v_name, quote_ident(v_col)
                    USING ERRCODE = 'undefined_column';
            END IF;
        END LOOP;
        IF (SELECT count(DISTINCT c) FROM unnest(p_id_columns) AS c) <> cardinality(p_id_columns) THEN
            RAISE EXCEPTION 'auditsql: the id columns for % name a column twice', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_keys := p_id_columns;
        v_source := 'explicit';
    ELSE
        SELECT array_agg(a.attname::text ORDER BY k.ord) INTO v_keys
        FROM pg_index AS i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = p_table AND i.indisprimary;
        IF v_keys IS NULL THEN
            RAISE EXCEPTION 'auditsql: table % has no primary key, so its rows cannot be identified in the audit log', v_name
                USING ERRCODE = 'invalid_table_definition',
                      HINT = format('Add a primary key, or name the columns that identify a row: SELECT %I.attach(%L, ARRAY[...]) or auditsql attach %s --id-columns a,b',
                                    'audit', v_name, v_name);
        END IF;
        v_source := 'primary key';
    END IF;

    SELECT * INTO v_was FROM "audit".tables WHERE relid = p_table;
    v_capture := coalesce(p_capture, v_was.capture, 'row');
    IF v_capture NOT IN ('row', 'statement') THEN
        RAISE EXCEPTION 'auditsql: unknown capture mode %; use row or statement', quote_literal(v_capture)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_capture = 'statement' AND v_rel.relkind = 'p' THEN
        RAISE EXCEPTION 'auditsql: % is partitioned and can only be captured row by row; statement triggers on it would miss writes made straight into a partition', v_name
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Attach it with capture mode row (the default).';
    END IF;

    v_now := ROW(p_table, v_keys, v_source, v_capture,
                 coalesce(p_exclude, v_was.exclude, '{}'), coalesce(p_redact, v_was.redact, '{}'),
                 coalesce(p_on_change, v_was.on_change, '{}'), coalesce(p_strict, v_was.require_actor, false),
                 coalesce(v_was.granted_select, false), coalesce(v_was.granted_usage, '{}'),
                 coalesce(v_was.attached_at, now()), coalesce(v_was.attached_by, session_user));
    IF jsonb_typeof(v_now.on_change) <> 'object'
       OR EXISTS (SELECT FROM jsonb_each(v_now.on_change) AS o WHERE jsonb_typeof(o.value) <> 'string') THEN
        RAISE EXCEPTION 'auditsql: on-change policies of % must be an object of column names to action names', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_policy IN
        SELECT p.policy, c.col
        FROM (VALUES ('exclude', v_now.exclude), ('redact', v_now.redact),
                     ('on-change', ARRAY(SELECT jsonb_object_keys(v_now.on_change)))) AS p(policy, cols)
        CROSS JOIN LATERAL unnest(p.cols) AS c(col)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_attribute
                       WHERE attrelid = p_table AND attname = v_policy.col
                         AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'auditsql: % policy names column %, which table % does not have', v_policy.policy, quote_ident(v_policy.col), v_name
                USING ERRCODE = 'undefined_column';
        END IF;
        IF v_policy.policy IN ('exclude', 'redact') AND v_policy.col = ANY (v_keys) THEN
            RAISE EXCEPTION 'auditsql: column % of % identifies rows (entity_id) and cannot be %', quote_ident(v_policy.col), v_name,
                CASE v_policy.policy WHEN 'exclude' THEN 'excluded' ELSE 'redacted' END
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF v_now.exclude && v_now.redact THEN
        RAISE EXCEPTION 'auditsql: a column of % cannot be both excluded and redacted', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_now.exclude && ARRAY(SELECT jsonb_object_keys(v_now.on_change)) THEN
        RAISE EXCEPTION 'auditsql: an excluded column of % cannot have an on-change action: its values are never stored', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM "audit".action_category(o.value)
    FROM jsonb_each_text(v_now.on_change) AS o;

    -- The table's row first: capture_source reads it.
    INSERT INTO "audit".tables SELECT v_now.*
    ON CONFLICT (relid) DO UPDATE
        SET id_columns = excluded.id_columns, id_source = excluded.id_source,
            capture = excluded.capture, exclude = excluded.exclude, redact = excluded.redact,
            on_change = excluded.on_change, require_actor = excluded.require_actor;

    SELECT string_agg(quote_literal(c), ', ' ORDER BY o) INTO v_args
    FROM unnest(v_keys) WITH ORDINALITY AS u(c, o);

    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM "audit".drop_triggers(p_table);
    -- The body is passed as a quoted literal, not dollar-quoted: column
    -- names appear in it, and a name may contain any dollar-quote tag.
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql '
                   'SECURITY DEFINER AS %L', v_function,
                   "audit".capture_source(p_table));
    EXECUTE format('ALTER FUNCTION %s() OWNER TO %I', v_function, 'auditsql_owner');
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
    IF v_rel.relkind = 'p' THEN
        -- Creating a partition clones the row trigger, which PostgreSQL
        -- allows only to a role that may execute its function: the table's
        -- owner, so that its migrations can add partitions. The function
        -- refuses to run on any table outside the tree.
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s() TO %s', v_function, v_rel.relowner::regrole);
    END IF;
    EXECUTE format('COMMENT ON FUNCTION %s() IS %L', v_function,
                   format('auditsql: capture for %s (generated by attach; run attach again after altering the table)', v_name));

    IF v_capture = 'statement' THEN
        EXECUTE format('CREATE TRIGGER auditsql_capture_insert AFTER INSERT ON %s '
                       'REFERENCING NEW TABLE AS auditsql_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('CREATE TRIGGER auditsql_capture_update AFTER UPDATE ON %s '
                       'REFERENCING OLD TABLE AS auditsql_old NEW TABLE AS auditsql_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('CREATE TRIGGER auditsql_capture_delete AFTER DELETE ON %s '
                       'REFERENCING OLD TABLE AS auditsql_old '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_insert, '
                       'ENABLE ALWAYS TRIGGER auditsql_capture_update, '
                       'ENABLE ALWAYS TRIGGER auditsql_capture_delete', p_table);
    ELSE
        EXECUTE format('CREATE TRIGGER auditsql_capture_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION %s()', p_table, v_function);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_row', p_table);
    END IF;

    -- Each member of the table's tree: the table itself, and for a
    -- partitioned table every partition. The table and each leaf get the
    -- TRUNCATE trigger; TRUNCATE capture reads rows as the owner role, so it
    -- gets SELECT on every member and USAGE on their schemas.
    v_granted := coalesce(v_was.granted_select, false);
    v_usage := coalesce(v_was.granted_usage, '{}');
    FOR v_member IN
        SELECT c.oid::regclass AS rel, c.relkind, c.relnamespace AS nsp, n.nspname
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = p_table
           OR c.oid IN (SELECT t.relid FROM pg_partition_tree(p_table) AS t)
    LOOP
        IF v_member.rel = p_table OR v_member.relkind = 'r' THEN
            EXECUTE format('CREATE TRIGGER auditsql_capture_truncate BEFORE TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION %I.capture_truncate(%s)',
                           v_member.rel, 'audit', v_args);
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER auditsql_capture_truncate',
                           v_member.rel);
        END IF;
        IF NOT has_table_privilege('auditsql_owner', v_member.rel, 'SELECT') THEN
            EXECUTE format('GRANT SELECT ON %s TO %I', v_member.rel, 'auditsql_owner');
            v_granted := true;
        END IF;
        IF NOT has_schema_privilege('auditsql_owner', v_member.nsp, 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_member.nspname, 'auditsql_owner');
            v_usage := v_usage || v_member.nsp;
        END IF;
    END LOOP;

    PERFORM "audit".stamp('pg_catalog.pg_trigger'::regclass, array_agg(g.oid))
    FROM pg_trigger AS g
    WHERE g.tgrelid IN (SELECT p_table UNION ALL SELECT r.relid FROM pg_partition_tree(p_table) AS r)
      AND g.tgname LIKE 'auditsql\_%' AND g.tgparentid = 0;
    PERFORM "audit".stamp('pg_catalog.pg_proc'::regclass, ARRAY[v_function::regproc::oid]);

    UPDATE "audit".tables SET granted_select = v_granted, granted_usage = v_usage
    WHERE relid = p_table;

    IF v_was IS NULL
       OR (v_was.id_columns, v_was.capture, v_was.exclude, v_was.redact, v_was.on_change, v_was.require_actor)
          IS DISTINCT FROM (v_now.id_columns, v_now.capture, v_now.exclude, v_now.redact, v_now.on_change, v_now.require_actor) THEN
        PERFORM "audit".record_system_event('attached', v_name, NULL,
            jsonb_build_object('id_columns', to_jsonb(v_keys), 'id_source', v_source, 'capture', v_capture,
                               'exclude', to_jsonb(v_now.exclude), 'redact', to_jsonb(v_now.redact),
                               'on_change', v_now.on_change, 'require_actor', v_now.require_actor));
    END IF;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;

-- detach: stop auditing a table: its triggers and its generated capture
-- function go. Idempotent: detaching a table that is not audited does
-- nothing. A table dropped while audited is detached by its oid:
-- audit.detach(16384). The events already written stay in the log, and the
-- detach itself is recorded as an event. Revokes the SELECT and USAGE that
-- attach granted to the owner role, and only those.
CREATE OR REPLACE FUNCTION "audit".detach(p_table regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was  "audit".tables;
    v_member regclass;
    v_schema text;
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not detach tables: it must be a member of %', current_user, 'auditsql_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO v_was FROM "audit".tables WHERE relid = p_table;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM "audit".drop_triggers(p_table);
    EXECUTE format('DROP FUNCTION IF EXISTS %I.%I()', 'audit', 'capture_' || p_table::oid);
    IF v_was IS NULL THEN
        PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
        RETURN;
    END IF;
    IF v_was.granted_select THEN
        FOR v_member IN  -- a table dropped since attach has nothing left to revoke
            SELECT c.oid FROM pg_class AS c WHERE c.oid = p_table
            UNION
            SELECT relid FROM pg_partition_tree(p_table)
        LOOP
            EXECUTE format('REVOKE SELECT ON %s FROM %I', v_member, 'auditsql_owner');
        END LOOP;
    END IF;
    DELETE FROM "audit".tables WHERE relid = p_table;
    -- USAGE that attach granted, on schemas no other audited table needs.
    FOR v_schema IN
        SELECT n.nspname FROM pg_namespace AS n
        WHERE n.oid = ANY (v_was.granted_usage)
          AND NOT EXISTS (SELECT FROM "audit".tables AS t
                          WHERE n.oid = ANY (t.granted_usage))
    LOOP
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, 'auditsql_owner');
    END LOOP;
    PERFORM "audit".record_system_event('detached', p_table::text, NULL, NULL);
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;

-- configure: change the installation-wide settings (audit.settings) and
-- regenerate the capture function of every audited table, which embeds them.
--   p_admin_roles  actor roles whose events are admin actions; NULL keeps
--   p_strict       every audited table requires an actor: writes without one fail; NULL keeps
-- Records a 'configured' system event when something changed. Runs with the
-- caller's rights: the caller must be a member of the owner role.
CREATE OR REPLACE FUNCTION "audit".configure(
    p_admin_roles text[]  DEFAULT NULL,
    p_strict      boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_was "audit".settings;
    v_now "audit".settings;
    v_table regclass;
BEGIN
    IF NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not change settings: it must be a member of %', current_user, 'auditsql_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_admin_roles IS NOT NULL AND (array_position(p_admin_roles, NULL) IS NOT NULL
                                      OR array_position(p_admin_roles, '') IS NOT NULL) THEN
        RAISE EXCEPTION 'auditsql: admin roles must be non-empty names'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_was FROM "audit".settings FOR UPDATE;
    UPDATE "audit".settings
       SET admin_roles = coalesce(p_admin_roles, admin_roles), require_actor = coalesce(p_strict, require_actor)
    RETURNING * INTO v_now;
    IF v_now IS DISTINCT FROM v_was THEN
        FOR v_table IN
            SELECT t.relid::regclass FROM "audit".tables AS t
            JOIN pg_class AS c ON c.oid = t.relid
        LOOP
            PERFORM "audit".attach(v_table);
        END LOOP;
        PERFORM "audit".record_system_event('configured', NULL, NULL,
            jsonb_build_object('admin_roles', to_jsonb(v_now.admin_roles), 'require_actor', v_now.require_actor));
    END IF;
END
$fn$;

-- record_policy: trigger on retention. Every change of the retention policy,
-- by set_retention or by hand, is recorded as a `retention_policy_set` event
-- holding the new policy and the previous one. A policy, once set, can be
-- changed but not removed: DELETE and TRUNCATE are refused. Runs with the
-- caller's rights.
CREATE OR REPLACE FUNCTION "audit".record_policy()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
AS $fn$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'auditsql: the retention policy can be changed but not removed: % on %.% is not allowed',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Set another policy with auditsql retention set POLICY.';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.policy = NEW.policy AND OLD.keep::text = NEW.keep::text THEN
        RETURN NULL;
    END IF;
    PERFORM "audit".record_system_event('retention_policy_set',
        format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), NULL,
        jsonb_build_object('policy', NEW.policy, 'keep', NEW.keep::text,
                           'previous', CASE WHEN TG_OP = 'UPDATE' THEN
                               jsonb_build_object('policy', OLD.policy, 'keep', OLD.keep::text,
                                                  'set_at', OLD.set_at, 'set_by', OLD.set_by) END));
    RETURN NULL;
END
$fn$;

-- record_hold: trigger on legal_holds. Every hold placed or released, by
-- place_hold / release_hold or by hand, is recorded on the entity as a
-- `legal_hold_placed` event (the reason and the number of the entity's
-- events in the log) or a `legal_hold_released` event (the hold released,
-- and the reason for releasing it from auditsql.release_reason). Holds are
-- never edited in place: UPDATE and TRUNCATE are refused, so no hold can
-- vanish unrecorded. Runs with the caller's rights.
CREATE OR REPLACE FUNCTION "audit".record_hold()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_count bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO v_count FROM "audit".events AS e
        WHERE e.entity_type = NEW.entity_type AND e.entity_id = NEW.entity_id;
        PERFORM "audit".record_system_event('legal_hold_placed', NEW.entity_type, NEW.entity_id,
            jsonb_build_object('reason', NEW.reason, 'events', v_count));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM "audit".record_system_event('legal_hold_released', OLD.entity_type, OLD.entity_id,
            jsonb_build_object('reason', nullif(current_setting('auditsql.release_reason', true), ''),
                               'hold', jsonb_build_object('reason', OLD.reason, 'placed_at', OLD.placed_at,
                                                          'placed_by', OLD.placed_by)));
    ELSE
        RAISE EXCEPTION 'auditsql: legal holds are placed and released, never changed: % on %.% is not allowed',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Release the hold and place it again (auditsql retention release / hold).';
    END IF;
    RETURN NULL;
END
$fn$;

-- retention_interval: the interval a retention policy keeps events for.
--   p_policy  financial (7 years), medical (5 years), saas (3 years), or any
--             PostgreSQL interval such as '2 years' or '18 months'
-- Refused, with a sentence saying why: anything else, an interval that is
-- not longer than zero, and one so long that now() minus it is out of range.
CREATE OR REPLACE FUNCTION "audit".retention_interval(p_policy text)
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

-- set_retention: set the retention policy (see retention_interval for what
-- p_policy may be) and return the interval it keeps events for. Idempotent:
-- setting the policy in force changes nothing; a change is recorded as a
-- `retention_policy_set` event (by the trigger on the retention table).
-- Runs with the caller's rights: the caller must be a member of the owner
-- role.
CREATE OR REPLACE FUNCTION "audit".set_retention(p_policy text)
RETURNS interval
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_keep   interval;
    v_name   text;
    v_was    "audit".retention;
BEGIN
    IF NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not set the retention policy: it must be a member of %', current_user, 'auditsql_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_keep := "audit".retention_interval(p_policy);
    v_name := CASE WHEN lower(btrim(p_policy)) IN ('financial', 'medical', 'saas')
                   THEN lower(btrim(p_policy)) ELSE 'custom' END;
    SELECT * INTO v_was FROM "audit".retention FOR UPDATE;
    IF FOUND AND v_was.policy = v_name AND v_was.keep = v_keep
       AND v_was.keep::text = v_keep::text THEN
        RETURN v_keep;
    END IF;
    INSERT INTO "audit".retention AS r (policy, keep)
    VALUES (v_name, v_keep)
    ON CONFLICT (singleton) DO UPDATE
        SET policy = excluded.policy, keep = excluded.keep,
            set_at = excluded.set_at, set_by = excluded.set_by;
    RETURN v_keep;
END
$fn$;

-- place_hold: put an entity under legal hold, so that retention keeps its
-- events (see apply_retention). Returns true when the hold is placed, false
-- when the entity was already held (nothing changes; the hold in force keeps
-- its reason). A new hold is recorded as a `legal_hold_placed` event on the
-- entity (by the trigger on legal_holds).
--   p_entity_type  as in events.entity_type: the schema-qualified table name,
--                  quoted as PostgreSQL quotes it (public.orders); it must be
--                  an audited table or appear in the log, so that a typo
--                  cannot place a hold that holds nothing
--   p_entity_id    as in events.entity_id (1001, or [7, "b"] for a
--                  composite key)
--   p_reason       why, for the record: 1 to 1000 characters
-- Runs with the caller's rights: the caller must be a member of the owner
-- role.
CREATE OR REPLACE FUNCTION "audit".place_hold(
    p_entity_type text,
    p_entity_id   text,
    p_reason      text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not place legal holds: it must be a member of %', current_user, 'auditsql_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_entity_id IS NULL OR p_entity_id = '' THEN
        RAISE EXCEPTION 'auditsql: a legal hold needs an entity id'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' OR char_length(p_reason) > 1000 THEN
        RAISE EXCEPTION 'auditsql: a legal hold needs a reason of 1 to 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_entity_type IS NULL
       OR NOT (EXISTS (SELECT FROM "audit".tables AS t
                       JOIN pg_class AS c ON c.oid = t.relid
                       JOIN pg_namespace AS n ON n.oid = c.relnamespace
                       WHERE format('%I.%I', n.nspname, c.relname) = p_entity_type)
               OR EXISTS (SELECT FROM "audit".events AS e
                          WHERE e.entity_type = p_entity_type)) THEN
        RAISE EXCEPTION 'auditsql: no audited table and no event in the log has entity type %', coalesce(quote_literal(p_entity_type), 'NULL')
            USING ERRCODE = 'undefined_table',
                  HINT = 'Entity types are schema-qualified table names as in events.entity_type, such as public.orders.';
    END IF;
    INSERT INTO "audit".legal_holds (entity_type, entity_id, reason)
    VALUES (p_entity_type, p_entity_id, p_reason)
    ON CONFLICT (entity_type, entity_id) DO NOTHING;
    RETURN FOUND;
END
$fn$;

-- release_hold: lift the legal hold on an entity; its events are then
-- removed by the next retention run that finds them due. Recorded as a
-- `legal_hold_released` event on the entity (by the trigger on legal_holds),
-- with the hold released and the reason for releasing it, which reaches the
-- trigger in the transaction-local setting auditsql.release_reason.
-- Refused when the entity is not under legal hold, so that a typo cannot
-- pass for a release.
--   p_reason  why, for the record (optional; at most 1000 characters)
-- Runs with the caller's rights: the caller must be a member of the owner
-- role.
CREATE OR REPLACE FUNCTION "audit".release_hold(
    p_entity_type text,
    p_entity_id   text,
    p_reason      text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT pg_has_role(current_user, 'auditsql_owner', 'USAGE') THEN
        RAISE EXCEPTION 'auditsql: role % may not release legal holds: it must be a member of %', current_user, 'auditsql_owner'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF char_length(p_reason) > 1000 THEN
        RAISE EXCEPTION 'auditsql: the reason for releasing a legal hold may be at most 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('auditsql.release_reason', coalesce(btrim(p_reason), ''), true);
    DELETE FROM "audit".legal_holds AS h
    WHERE h.entity_type = p_entity_type AND h.entity_id = p_entity_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    PERFORM set_config('auditsql.release_reason', '', true);
    IF v_rows = 0 THEN
        RAISE EXCEPTION 'auditsql: % % is not under legal hold', coalesce(p_entity_type, 'NULL'), coalesce(p_entity_id, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
END
$fn$;

-- maintain: partition maintenance, meant to run daily (auditsql retention
-- schedule / run). Returns one row per partition it created.
--   months_ahead  partitions are kept for the current UTC month and this many
--                 months after it (0 to 120, default 3)
-- First, events that landed in the default partition (because their month
-- had no partition yet) are moved into new partitions of their months:
-- each month's rows are copied into a partition created apart, deleted from
-- the default partition in the same statement, and the partition is
-- attached; a `default_rows_moved` event records partitions, ranges and row
-- counts. Then the partitions ahead are created.
--
-- Locks, in this order, so that no writer waits for more than a moment:
--   * the log: SHARE UPDATE EXCLUSIVE (one maintenance at a time; readers
--     and writers go on);
--   * only when it holds rows, the default partition: SHARE ROW EXCLUSIVE
--     while rows are moved (readers go on; writers whose events would land
--     in the default partition wait; writers to the current month, which has
--     its partition, never touch it), then ACCESS EXCLUSIVE for ATTACH, which
--     checks the default partition, for a moment.
-- Never a lock on the log stronger than SHARE UPDATE EXCLUSIVE, so a reader
-- holding the log while it waits for the default partition cannot deadlock
-- with it. lock_timeout is 2 s: if a lock cannot be had, the run fails and
-- changes nothing, and the next run tries again.
--
-- The guards stay in force for everyone: the move deletes from the default
-- partition with its two guard triggers disabled and DELETE granted to the
-- owner inside this transaction only, while it holds a lock that keeps every
-- other writer out; both are restored before it returns, so no other
-- session ever sees them lifted, and the rows deleted are exactly the rows
-- the same statement inserts into their new partition.
CREATE OR REPLACE FUNCTION "audit".maintain(months_ahead integer DEFAULT 3)
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz, rows_moved bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $fn$
DECLARE
    v_month  timestamptz;
    v_start  timestamptz;
    v_end    timestamptz;
    v_name   text;
    v_rel    regclass;
    v_rows   bigint;
    v_moved  jsonb := '[]'::jsonb;
    v_new    regclass[] := '{}'::regclass[];
    v_bounds timestamptz[] := '{}'::timestamptz[];
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'auditsql: months_ahead must be between 0 and 120, not %', coalesce(months_ahead::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM "audit".lock_log('"audit".events', 'SHARE UPDATE EXCLUSIVE');

    IF EXISTS (SELECT FROM "audit".events_default) THEN
        PERFORM "audit".lock_log('"audit".events_default', 'SHARE ROW EXCLUSIVE');
        ALTER TABLE "audit".events_default
            DISABLE TRIGGER auditsql_guard_statement, DISABLE TRIGGER auditsql_guard_row;
        EXECUTE format('GRANT DELETE ON %I.events_default TO %I', 'audit', 'auditsql_owner');
        FOR v_month IN
            SELECT DISTINCT (date_trunc('month', occurred_at AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC'
            FROM "audit".events_default ORDER BY 1
        LOOP
            v_start := v_month;
            v_end   := ((v_month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
            v_name  := 'events_' || to_char(v_start AT TIME ZONE 'UTC', 'YYYY_MM');
            IF EXISTS (SELECT FROM "audit".event_partitions() AS p
                       WHERE NOT p.is_default AND p.range_from < v_end AND p.range_to > v_start) THEN
                RAISE WARNING 'auditsql: events of % stay in the default partition: a partition not made by auditsql covers part of that month', v_name;
                CONTINUE;
            END IF;
            v_rel := "audit".create_partition(v_name, v_start, v_end);
            EXECUTE format('WITH moved AS (DELETE FROM %I.events_default '
                           'WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
                           'INSERT INTO %s SELECT * FROM moved', 'audit', v_rel)
                USING v_start, v_end;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            v_new := v_new || v_rel;
            v_bounds := v_bounds || v_start || v_end;
            v_moved := v_moved || jsonb_build_object('partition', v_name, 'from', v_start, 'to', v_end, 'rows', v_rows);
            partition := v_name; range_from := v_start; range_to := v_end; rows_moved := v_rows;
            RETURN NEXT;
        END LOOP;
        EXECUTE format('REVOKE DELETE ON %I.events_default FROM %I', 'audit', 'auditsql_owner');
        ALTER TABLE "audit".events_default
            ENABLE ALWAYS TRIGGER auditsql_guard_statement, ENABLE ALWAYS TRIGGER auditsql_guard_row;
        FOR i IN 1 .. cardinality(v_new) LOOP
            PERFORM "audit".attach_partition(v_new[i], v_bounds[2 * i - 1], v_bounds[2 * i]);
        END LOOP;
        IF cardinality(v_new) > 0 THEN
            PERFORM "audit".record_system_event('default_rows_moved',
                format('%I.events', 'audit'), NULL,
                jsonb_build_object('partitions', v_moved,
                                   'rows', (SELECT sum((m ->> 'rows')::bigint) FROM jsonb_array_elements(v_moved) AS m)));
        END IF;
    END IF;

    FOR v_name IN
        SELECT * FROM "audit".ensure_partitions(now(), months_ahead + 1)
    LOOP
        SELECT p.range_from, p.range_to INTO v_start, v_end
        FROM "audit".event_partitions() AS p WHERE p.name = v_name;
        partition := v_name; range_from := v_start; range_to := v_end; rows_moved := 0;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);
END
$fn$;

-- apply_retention: remove the events the retention policy no longer keeps.
-- The only way events ever leave the log, and only the owner role may run
-- it. Returns one row per partition it removed or rebuilt.
--   as_of  the time the policy is applied at (default now()); never later
--          than the current time, so no event younger than the policy
--          relative to the real clock can be removed
-- The cutoff is as_of minus the policy's interval, computed in UTC. A
-- partition is due when it lies entirely before the cutoff (its upper bound
-- is at or before it): every event in it is at least as old as the policy.
-- Nothing else is touched; the default partition never is (maintain()
-- first moves its rows into monthly partitions).
-- A due partition holding no events of an entity under legal hold is
-- dropped. One holding such events is rebuilt: the held events are copied
-- out, the partition is dropped, and a new one for the same range, holding
-- only them, takes its place; if every event in it is held it is kept as it
-- is. Held events keep their ids and stay in the log, where every query and
-- check reads them. Events leave only with a whole table, never by DELETE,
-- so the guards stay in force.
-- Records one `retention_applied` event stating the policy, the cutoff and,
-- for each partition, its range and the rows removed and kept; nothing is
-- recorded when nothing is due.
-- Locks, in this order: the holds table (SHARE: no hold is placed or released
-- meanwhile); each due partition (SHARE, while it is counted: writes to it
-- wait, nothing else does); then, for the drops alone, ACCESS EXCLUSIVE on the
-- log, which DROP TABLE of a partition needs: a moment of catalog changes
-- (plus copying the held events of a rebuilt partition). lock_timeout is 2 s:
-- if a lock cannot be had, the run fails and changes nothing. Nothing is
-- locked when nothing is due.
CREATE OR REPLACE FUNCTION "audit".apply_retention(as_of timestamptz DEFAULT now())
RETURNS TABLE (partition text, range_from timestamptz, range_to timestamptz,
               rows_removed bigint, rows_kept bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
SET lock_timeout = '2s'
AS $fn$
DECLARE
    v_policy "audit".retention;
    v_cutoff timestamptz;
    v_part   record;
    v_parts  jsonb := '[]'::jsonb;
    v_total  bigint;
    v_held   "audit".events[];
    v_kept   bigint;
    v_rel    regclass;
    v_done   jsonb := '[]'::jsonb;
    v_permit text := current_setting('auditsql.permit_ddl', true);
BEGIN
    IF as_of IS NULL OR as_of > clock_timestamp() THEN
        RAISE EXCEPTION 'auditsql: apply_retention: as_of must not be in the future (got %)', coalesce(as_of::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_policy FROM "audit".retention;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'auditsql: no retention policy is set, so nothing can be removed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set one with auditsql retention set POLICY (financial, medical, saas or an interval).';
    END IF;
    v_cutoff := (as_of AT TIME ZONE 'UTC' - v_policy.keep) AT TIME ZONE 'UTC';
    IF NOT EXISTS (SELECT FROM "audit".event_partitions() AS p
                   WHERE NOT p.is_default AND p.range_to <= v_cutoff) THEN
        RETURN;
    END IF;

    -- Holds cannot change until this transaction ends.
    LOCK TABLE "audit".legal_holds IN SHARE MODE;
    -- First count, with each due partition locked against writes (nobody
    -- else has a reason to write there) but not the log, so that counting a
    -- large partition blocks no writer.
    FOR v_part IN
        SELECT p.partition AS rel, p.name, p.range_from AS lo, p.range_to AS hi
        FROM "audit".event_partitions() AS p
        WHERE NOT p.is_default AND p.range_to <= v_cutoff
        ORDER BY p.range_from
    LOOP
        PERFORM "audit".lock_log(v_part.rel, 'SHARE');
        -- Through the log, restricted to the partition's range: pruning
        -- leaves exactly this partition, and rows come typed as the log's.
        SELECT count(*) INTO v_total FROM "audit".events AS e
        WHERE e.occurred_at >= v_part.lo AND e.occurred_at < v_part.hi;
        SELECT count(*) INTO v_kept
        FROM "audit".legal_holds AS l
        CROSS JOIN LATERAL (
            SELECT FROM "audit".events AS e
            WHERE e.entity_type = l.entity_type AND e.entity_id = l.entity_id
              AND e.occurred_at >= v_part.lo AND e.occurred_at < v_part.hi) AS h;
        CONTINUE WHEN v_total > 0 AND v_kept = v_total;
        v_parts := v_parts || jsonb_build_object('rel', v_part.rel::oid, 'partition', v_part.name,
                                                 'from', v_part.lo, 'to', v_part.hi,
                                                 'rows_removed', v_total - v_kept, 'rows_kept', v_kept);
    END LOOP;
    IF jsonb_array_length(v_parts) = 0 THEN
        RETURN;
    END IF;

    -- Then drop, under ACCESS EXCLUSIVE on the log for a moment.
    PERFORM set_config('auditsql.permit_ddl', 'on', true);
    PERFORM "audit".lock_log('"audit".events', 'ACCESS EXCLUSIVE');
    FOR v_part IN
        SELECT (d ->> 'rel')::oid::regclass AS rel, d ->> 'partition' AS name,
               (d ->> 'from')::timestamptz AS lo, (d ->> 'to')::timestamptz AS hi,
               (d ->> 'rows_removed')::bigint AS removed, (d ->> 'rows_kept')::bigint AS kept
        FROM jsonb_array_elements(v_parts) AS d
    LOOP
        IF v_part.kept > 0 THEN
            SELECT array_agg(h.e ORDER BY (h.e).id) INTO v_held
            FROM "audit".legal_holds AS l
            CROSS JOIN LATERAL (
                SELECT e FROM "audit".events AS e
                WHERE e.entity_type = l.entity_type AND e.entity_id = l.entity_id
                  AND e.occurred_at >= v_part.lo AND e.occurred_at < v_part.hi) AS h;
        END IF;
        EXECUTE format('DROP TABLE %s', v_part.rel);
        IF v_part.kept > 0 THEN
            v_rel := "audit".create_partition(v_part.name, v_part.lo, v_part.hi);
            EXECUTE format('INSERT INTO %s SELECT * FROM unnest($1)', v_rel) USING v_held;
            PERFORM "audit".attach_partition(v_rel, v_part.lo, v_part.hi);
        END IF;
        partition := v_part.name; range_from := v_part.lo; range_to := v_part.hi;
        rows_removed := v_part.removed; rows_kept := v_part.kept;
        v_done := v_done || jsonb_build_object('partition', v_part.name, 'from', v_part.lo, 'to', v_part.hi,
                                               'rows_removed', v_part.removed, 'rows_kept', v_part.kept);
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('auditsql.permit_ddl', coalesce(v_permit, ''), true);

    PERFORM "audit".record_system_event('retention_applied',
        format('%I.events', 'audit'), NULL,
        jsonb_build_object(
            'policy', v_policy.policy, 'keep', v_policy.keep::text,
            'as_of', as_of, 'cutoff', v_cutoff, 'partitions', v_done,
            'rows_removed', (SELECT sum((d ->> 'rows_removed')::bigint) FROM jsonb_array_elements(v_done) AS d),
            'rows_kept', (SELECT sum((d ->> 'rows_kept')::bigint) FROM jsonb_array_elements(v_done) AS d)));
END
$fn$;

-- Partitions attached by an earlier version kept the CHECK constraint that
-- create_partition gives them; drop it (see functions/drop_bound_check.sql).
DO $bounds$
DECLARE
    v_partition regclass;
BEGIN
    FOR v_partition IN
        SELECT i.inhrelid::regclass
        FROM pg_inherits AS i
        WHERE i.inhparent = '"audit".events'::regclass
    LOOP
        PERFORM "audit".drop_bound_check(v_partition);
    END LOOP;
END
$bounds$;

-- Guards: the log is append-only for everyone. Statement-level triggers on
-- the parent and every partition refuse UPDATE, DELETE and TRUNCATE even
-- when no row matches; a row-level trigger on the parent, cloned onto any
-- partition created later by hand, backs them up. All ENABLE ALWAYS.
DROP TRIGGER IF EXISTS auditsql_guard_statement ON "audit".events;
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR DELETE OR TRUNCATE ON "audit".events
    FOR EACH STATEMENT EXECUTE FUNCTION "audit".guard();
ALTER TABLE "audit".events ENABLE ALWAYS TRIGGER auditsql_guard_statement;

DROP TRIGGER IF EXISTS auditsql_guard_row ON "audit".events;
CREATE TRIGGER auditsql_guard_row
    BEFORE UPDATE OR DELETE ON "audit".events
    FOR EACH ROW EXECUTE FUNCTION "audit".guard();
ALTER TABLE "audit".events ENABLE ALWAYS TRIGGER auditsql_guard_row;

DROP TRIGGER IF EXISTS auditsql_guard_statement ON "audit".events_default;
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR DELETE OR TRUNCATE ON "audit".events_default
    FOR EACH STATEMENT EXECUTE FUNCTION "audit".guard();
ALTER TABLE "audit".events_default ENABLE ALWAYS TRIGGER auditsql_guard_statement;

-- The retention policy and the legal holds: every change is recorded in the
-- log by a row trigger; what would erase one unrecorded (removing the policy,
-- editing or truncating holds) is refused by a statement trigger.
DROP TRIGGER IF EXISTS auditsql_record ON "audit".retention;
CREATE TRIGGER auditsql_record
    AFTER INSERT OR UPDATE ON "audit".retention
    FOR EACH ROW EXECUTE FUNCTION "audit".record_policy();
DROP TRIGGER IF EXISTS auditsql_guard_statement ON "audit".retention;
CREATE TRIGGER auditsql_guard_statement
    BEFORE DELETE OR TRUNCATE ON "audit".retention
    FOR EACH STATEMENT EXECUTE FUNCTION "audit".record_policy();
ALTER TABLE "audit".retention
    ENABLE ALWAYS TRIGGER auditsql_record, ENABLE ALWAYS TRIGGER auditsql_guard_statement;

DROP TRIGGER IF EXISTS auditsql_record ON "audit".legal_holds;
CREATE TRIGGER auditsql_record
    AFTER INSERT OR DELETE ON "audit".legal_holds
    FOR EACH ROW EXECUTE FUNCTION "audit".record_hold();
DROP TRIGGER IF EXISTS auditsql_guard_statement ON "audit".legal_holds;
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR TRUNCATE ON "audit".legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION "audit".record_hold();
ALTER TABLE "audit".legal_holds
    ENABLE ALWAYS TRIGGER auditsql_record, ENABLE ALWAYS TRIGGER auditsql_guard_statement;

SELECT "audit".ensure_partitions(pg_catalog.now(), 2);

-- Grants. PUBLIC may use the schema only to reach set_actor and set_request;
-- the writer role may also call log_event;
-- it holds nothing on tables, sequences or any other function. The reader
-- role may read the log and the list of audited tables. Nobody, the owner
-- included, holds UPDATE, DELETE or TRUNCATE on the log.
REVOKE ALL ON ALL TABLES IN SCHEMA "audit" FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA "audit" FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA "audit" FROM PUBLIC;
GRANT USAGE ON SCHEMA "audit" TO PUBLIC;
GRANT EXECUTE ON FUNCTION "audit".set_actor(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION "audit".set_request(text, text, text) TO PUBLIC;

GRANT USAGE ON SCHEMA "audit" TO "auditsql_reader";
-- status compares each capture function with what attach would generate now.
GRANT EXECUTE ON FUNCTION "audit".capture_source(regclass),
                          "audit".key_expression(text, text[]) TO "auditsql_reader";
GRANT SELECT ON "audit".events, "audit".history, "audit".envelope,
                "audit".tables, "audit".settings,
                "audit".installation, "audit".retention,
                "audit".legal_holds, "audit".events_default
             TO "auditsql_reader";
-- The reader may list the log's partitions (catalog only), for status and
-- health checks.
GRANT EXECUTE ON FUNCTION "audit".event_partitions() TO "auditsql_reader";

-- The writer role may log application events (and nothing else).
GRANT USAGE ON SCHEMA "audit" TO "auditsql_writer";
GRANT EXECUTE ON FUNCTION "audit".log_event(text, text, text, jsonb) TO "auditsql_writer";

REVOKE UPDATE, DELETE, TRUNCATE ON "audit".events, "audit".events_default
    FROM "auditsql_owner";


RESET ROLE;

-- Event triggers: ddl_guard() on every DDL command and every drop in the
-- database, ENABLE ALWAYS so that session_replication_role = replica does
-- not lift them. Created only when a superuser installs (event triggers
-- need one, and belong to that superuser), with their function in a schema
-- of that superuser's (see functions/ddl_guard.sql). Event triggers belong
-- to the database, so their names carry the schema.
CREATE SCHEMA IF NOT EXISTS "auditsql_guard_audit";
COMMENT ON SCHEMA "auditsql_guard_audit"
    IS 'auditsql: the event trigger function guarding schema audit';
REVOKE ALL ON SCHEMA "auditsql_guard_audit" FROM PUBLIC;

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
CREATE OR REPLACE FUNCTION "auditsql_guard_audit".ddl_guard()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_schema  oid := (SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = 'audit');
    v_guarded text[] := ARRAY['audit', 'auditsql_guard_audit'];
    v_guarded_oids oid[] := ARRAY(SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = ANY (v_guarded));
    v_command record;
    v_refused text[] := ARRAY[]::text[];
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user)
       OR EXISTS (SELECT FROM pg_roles AS r
                  WHERE r.rolname = 'auditsql_admin'
                    AND pg_has_role(current_user, r.oid, 'MEMBER'))
       OR (current_setting('auditsql.permit_ddl', true) = 'on'
           AND EXISTS (SELECT FROM pg_roles AS r
                       WHERE r.rolname = 'auditsql_owner'
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
                                'auditsql_admin');
    END IF;
END
$fn$;

REVOKE ALL ON FUNCTION "auditsql_guard_audit".ddl_guard() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS "auditsql_ddl_audit";
CREATE EVENT TRIGGER "auditsql_ddl_audit" ON ddl_command_end
    EXECUTE FUNCTION "auditsql_guard_audit".ddl_guard();
ALTER EVENT TRIGGER "auditsql_ddl_audit" ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER "auditsql_ddl_audit" IS 'auditsql: refuses DDL that would stop or weaken auditing';

DROP EVENT TRIGGER IF EXISTS "auditsql_drop_audit";
CREATE EVENT TRIGGER "auditsql_drop_audit" ON sql_drop
    EXECUTE FUNCTION "auditsql_guard_audit".ddl_guard();
ALTER EVENT TRIGGER "auditsql_drop_audit" ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER "auditsql_drop_audit" IS 'auditsql: refuses drops that would stop or weaken auditing';



-- Stamp every object this install defines with its fingerprint (the list
-- below is the install script's own CREATE statements, with the digest of
-- each; see auditsql/fingerprint.py), and bring the fingerprints of objects
-- created at run time (partitions and their guards) up to this version.
-- Objects install re-creates (functions, triggers, views, event triggers)
-- are stamped always; others only when they carried no fingerprint before
-- this install, or were unchanged since their last stamp; one changed by
-- hand keeps its old fingerprint (see setup/snapshot.sql). Capture triggers
-- on audited tables are stamped by attach. Runs as the installing
-- superuser, or else as the owner role, and stamps what that role may
-- comment on.
DO $stamp$
DECLARE
    v_changed jsonb := current_setting('auditsql.changed', true)::jsonb;
    v_object  record;
    v_comment text;
BEGIN
    FOR v_object IN
        SELECT o.target, o.comment, o.description,
               CASE
                   WHEN m.kind IS NOT NULL AND m.replaced THEN true
                   WHEN m.kind IS NOT NULL AND NOT (k.key = ANY (k.stamped)) THEN true
                   WHEN m.kind IS NOT NULL OR o.kind IN ('table', 'trigger') THEN k.key = ANY (k.intact)
                   ELSE false
               END AS restamp,
               format('auditsql %s sha256:%s', '0.1.0', o.digest) || coalesce(' source:' || m.source, '') AS line,
               v_changed ->> k.key AS old_line
        FROM "audit".fingerprints() AS o
        LEFT JOIN jsonb_to_recordset('[{"body":"ce3c8da958635020ac17a15210fa4c6dd73f63bc2c6497eae4be6407a1f3f526","kind":"function","name":"fingerprints","replaced":true,"schema":"audit","source":"cb16a6853e593479","table":null},{"body":"53f3bfe54da095a7926a988ff79023733283ebd796486246f3bc1d9b2b64595c","kind":"function","name":"stamp","replaced":true,"schema":"audit","source":"ba1b71e1c9b028a2","table":null},{"body":null,"kind":"table","name":"installation","replaced":false,"schema":"audit","source":"72202a1c17083261","table":null},{"body":null,"kind":"table","name":"tables","replaced":false,"schema":"audit","source":"00462fcca8ef3a4d","table":null},{"body":null,"kind":"table","name":"settings","replaced":false,"schema":"audit","source":"bdcd6604526a1730","table":null},{"body":null,"kind":"sequence","name":"events_id_seq","replaced":false,"schema":"audit","source":"db605de58b88c127","table":null},{"body":null,"kind":"table","name":"events","replaced":false,"schema":"audit","source":"64a639320391e7a4","table":null},{"body":null,"kind":"table","name":"events_default","replaced":false,"schema":"audit","source":"11f93d5761d59e58","table":null},{"body":null,"kind":"index","name":"events_entity_id_idx","replaced":false,"schema":"audit","source":"b7fdeb3d97ab3edd","table":"events"},{"body":null,"kind":"index","name":"events_actor_idx","replaced":false,"schema":"audit","source":"748b2380f03ea777","table":"events"},{"body":null,"kind":"index","name":"events_time_id_brin","replaced":false,"schema":"audit","source":"bdf4aed08b4e8298","table":"events"},{"body":null,"kind":"view","name":"history","replaced":true,"schema":"audit","source":"cd3cc5fc14e95c1f","table":null},{"body":null,"kind":"view","name":"envelope","replaced":true,"schema":"audit","source":"a515233d04a470a7","table":null},{"body":null,"kind":"table","name":"retention","replaced":false,"schema":"audit","source":"5e9024c9232cff88","table":null},{"body":null,"kind":"table","name":"legal_holds","replaced":false,"schema":"audit","source":"777bde1b35f9f9f8","table":null},{"body":"f2317fda99a365383e3b81116e9eb65bcbc288e03559b0d1ff67b5db9467a4ff","kind":"function","name":"inet_or_null","replaced":true,"schema":"audit","source":"7b07aaeb4420c0c0","table":null},{"body":"d0dcf8831afd6cdea692c985609cfc290b1914f32296816b244acde421b7c7f2","kind":"function","name":"guard","replaced":true,"schema":"audit","source":"c8cb2d58070647a4","table":null},{"body":"f4bb0f692930be5e74741e95e37fbfd16c0abd071c9d5d95ec70daf3b2f5d398","kind":"function","name":"event_partitions","replaced":true,"schema":"audit","source":"23467062e3d09cce","table":null},{"body":"81a8ac693be85ca34aef9806ea0cc48c62a520164a9235134d78873cb071ce4d","kind":"function","name":"create_partition","replaced":true,"schema":"audit","source":"832f62ed63af27b3","table":null},{"body":"82b9370f4258a696de1f7bcc3d8aa6b9807fed615112bc97b362bcfc90f05519","kind":"function","name":"drop_bound_check","replaced":true,"schema":"audit","source":"a49f8b02c8810eb3","table":null},{"body":"2275eb4a25197428850854c038eaac49ebd530f6453e2574a4a48daec15cdcff","kind":"function","name":"attach_partition","replaced":true,"schema":"audit","source":"1222f4daf60d32b7","table":null},{"body":"5d62aebeb8157b39623ddd42dceb214f98da099d75b0fb9ee4a45c3fb6a49ced","kind":"function","name":"lock_log","replaced":true,"schema":"audit","source":"932b6d538868a23d","table":null},{"body":"d450da817171a079051aba320de28db27eb20723bfbfebee28fb10684bbf4a59","kind":"function","name":"ensure_partitions","replaced":true,"schema":"audit","source":"edbe9d7e0fc98888","table":null},{"body":"a77d56c2f3652aac789a803c73967b768281729ec525109f725cec149beaf917","kind":"function","name":"set_actor","replaced":true,"schema":"audit","source":"70086c44ee8c4bca","table":null},{"body":"ee990058425c36dafd1b1039b740aa6de33f56802144b3123550bf8b49cc7f0d","kind":"function","name":"set_request","replaced":true,"schema":"audit","source":"f13a641227634acd","table":null},{"body":"e74849f8c7b1a8da8ddee3569b7fbacd21d82ac7d926c649f7f1d1b32dea05a8","kind":"function","name":"check_json_casts","replaced":true,"schema":"audit","source":"941295d70c29ede5","table":null},{"body":"60d78ec17428c59300b31612c11450610d1755fbb43ebbcd0eed470f222850da","kind":"function","name":"pin_image_settings","replaced":true,"schema":"audit","source":"746481041a524e1c","table":null},{"body":"c22c54a86bf0563355b1377c8dd827be63dba58b57f47eeb55c3c684463ee967","kind":"function","name":"restore_image_settings","replaced":true,"schema":"audit","source":"d0d2ad54dcecbeec","table":null},{"body":"38dccfe31955ac97a507d21cf135737ca44758c762a9d0d201b39a86607f9879","kind":"function","name":"changed_values","replaced":true,"schema":"audit","source":"cbf31f838fd33c07","table":null},{"body":"6a1cf5cde05fa3b9918bee820001a92276ed530cc702182742044ac7176f90a2","kind":"function","name":"key_expression","replaced":true,"schema":"audit","source":"ef61243934f8f05a","table":null},{"body":"8482c079d55accc8843dc65ed14cf44c6473f556555ce3215f8c6a9c6fd09671","kind":"function","name":"capture_source","replaced":true,"schema":"audit","source":"b8bdabec88f2f89e","table":null},{"body":"f083b581df88f9bf3d1d48ec096801e887340ae70eaf808e6c9315830af731b1","kind":"function","name":"capture_truncate","replaced":true,"schema":"audit","source":"99699eeb4514c504","table":null},{"body":"a957ccf7be00a5c05a067da8f8dbe908c7f3b904e7dc7e450d362d43a86230ab","kind":"function","name":"drop_triggers","replaced":true,"schema":"audit","source":"b8eb2970d862f053","table":null},{"body":"9546619463b971aa86eb087df0273878c310549b305c2c816bbfe168f18cdedf","kind":"function","name":"record_system_event","replaced":true,"schema":"audit","source":"548264c98e5813d3","table":null},{"body":"713a99424e00b6a312a81132d2c016ad5d4df8e01c93eebe78663449a747c6aa","kind":"function","name":"action_category","replaced":true,"schema":"audit","source":"8475fc9708e3a2de","table":null},{"body":"31f6cbf1bb82aacc9a7e900de0438d5ca02a776ea67716776f0aad503901c185","kind":"function","name":"log_event","replaced":true,"schema":"audit","source":"f6b5ddb782283a79","table":null},{"body":"497815f1d0268ee8ce6d69cef5106dd32bd91be19b40868f5119c54d5dc7f6a7","kind":"function","name":"attach","replaced":true,"schema":"audit","source":"1a0e811c8dcc1776","table":null},{"body":"c1f45b80a9fedee47a6df000c1fc4aca2bf4fb9cad5218e1b8bb81b1796cb76f","kind":"function","name":"detach","replaced":true,"schema":"audit","source":"9a4c9475ab69eb46","table":null},{"body":"c86cfa323ce3c8c28f3bbbb29f4682d97b8faf85ea0ce17aee8a416fb429c974","kind":"function","name":"configure","replaced":true,"schema":"audit","source":"3daf64aaf3491700","table":null},{"body":"f226f487a65101ef041cde4ca41f9bd329a3631e42d290c749d1d3c49277e7c1","kind":"function","name":"record_policy","replaced":true,"schema":"audit","source":"5080dac84c5fc79b","table":null},{"body":"f334e3af03042ff3d79020e4ef7f4d8f12f3b07fafcc094506da86e4f1a792f1","kind":"function","name":"record_hold","replaced":true,"schema":"audit","source":"8ccb4fd344e16075","table":null},{"body":"4cd43ddf7c0b9fc8bcb15e477c1318a7032236c15bf6612f82bda1438e5e9594","kind":"function","name":"retention_interval","replaced":true,"schema":"audit","source":"a366fc50601b9b83","table":null},{"body":"188d8cbd0f343ef9b82fe9d98673893dfa16ddabfc11c889d048603dc96de648","kind":"function","name":"set_retention","replaced":true,"schema":"audit","source":"2978774a27ccd974","table":null},{"body":"975b4afe967372dcdd36f7ab6689b3ef7181a16bf2becf2298a63a846762844e","kind":"function","name":"place_hold","replaced":true,"schema":"audit","source":"ff498bc228e162ca","table":null},{"body":"57442867dfbbc399aac16b326f0dbf53adf5724ce53592289305a620ea4e5cb9","kind":"function","name":"release_hold","replaced":true,"schema":"audit","source":"43285b5e852eba17","table":null},{"body":"401931ba094ecd12603710f15d6887033e924cb1b36da85012b768ed7a056d7d","kind":"function","name":"maintain","replaced":true,"schema":"audit","source":"442d47eccdf0fc9d","table":null},{"body":"99a601546e90165f5f184c262c554916a1a1fc53b82ae4203786f20e3cf4a459","kind":"function","name":"apply_retention","replaced":true,"schema":"audit","source":"fae7c905d1cd6fa2","table":null},{"body":null,"kind":"trigger","name":"auditsql_guard_statement","replaced":true,"schema":"audit","source":"5705fc301e623acf","table":"events"},{"body":null,"kind":"trigger","name":"auditsql_guard_row","replaced":true,"schema":"audit","source":"de0e86076ceaec6f","table":"events"},{"body":null,"kind":"trigger","name":"auditsql_guard_statement","replaced":true,"schema":"audit","source":"e21c7b5e366e014e","table":"events_default"},{"body":null,"kind":"trigger","name":"auditsql_record","replaced":true,"schema":"audit","source":"fd73edaafe2d79ce","table":"retention"},{"body":null,"kind":"trigger","name":"auditsql_guard_statement","replaced":true,"schema":"audit","source":"8d5fb867013dbebe","table":"retention"},{"body":null,"kind":"trigger","name":"auditsql_record","replaced":true,"schema":"audit","source":"46e65f6c88450343","table":"legal_holds"},{"body":null,"kind":"trigger","name":"auditsql_guard_statement","replaced":true,"schema":"audit","source":"5bc615165120c0b4","table":"legal_holds"},{"body":"fda564bce8c9e6ed1801f0e27add5227052c8ab3c5e3e9688eea63711fdd0ea3","kind":"function","name":"ddl_guard","replaced":true,"schema":"auditsql_guard_audit","source":"4fbff0f84bd41b6b","table":null},{"body":null,"kind":"event trigger","name":"auditsql_ddl_audit","replaced":true,"schema":null,"source":"39b764cf156bde05","table":null},{"body":null,"kind":"event trigger","name":"auditsql_drop_audit","replaced":true,"schema":null,"source":"7be382555c6fdd1f","table":null}]'::jsonb)
               AS m(kind text, schema text, name text, "table" text, source text, body text,
                    replaced boolean)
               ON m.kind = o.kind AND m.name = o.name AND m."table" IS NOT DISTINCT FROM o.table_name
              AND m.schema IS NOT DISTINCT FROM o.schema_name
              AND (m.body IS NULL OR m.body = o.body_digest)
        CROSS JOIN LATERAL (
            SELECT o.classid::oid::text || '/' || o.objid::text AS key,
                   string_to_array(current_setting('auditsql.stamped', true), ',') AS stamped,
                   string_to_array(current_setting('auditsql.intact', true), ',') AS intact) AS k
        WHERE NOT o.implicit
          AND (o.schema_name IN ('audit', 'auditsql_guard_audit')
               OR o.kind = 'event trigger')
          AND (o.owner = current_user
               OR (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user))
    LOOP
        IF v_object.restamp THEN
            v_comment := concat_ws(E'\n', nullif(v_object.description, ''), v_object.line);
        ELSIF v_object.old_line IS NOT NULL THEN
            v_comment := concat_ws(E'\n', nullif(v_object.description, ''), v_object.old_line);
        ELSE
            CONTINUE;
        END IF;
        IF v_object.comment IS DISTINCT FROM v_comment THEN
            EXECUTE format('COMMENT ON %s IS %L', v_object.target, v_comment);
        END IF;
    END LOOP;
END
$stamp$;

-- Record the installed version and settings, unless they are those of the
-- newest row already: running install again changes nothing. event_trigger
-- says whether the event triggers guard this installation (a superuser
-- created them, now or before); `auditsql verify` expects them when it does.
INSERT INTO "audit".installation (version, settings)
SELECT v.version, v.settings
FROM (SELECT '0.1.0'::text AS version,
             pg_catalog.jsonb_build_object(
                 'schema', 'audit'::text,
                 'owner', 'auditsql_owner'::text,
                 'reader', 'auditsql_reader'::text,
                 'writer', 'auditsql_writer'::text,
                 'admin', 'auditsql_admin'::text,
                 'event_trigger', EXISTS (SELECT FROM pg_catalog.pg_event_trigger
                                          WHERE evtname = 'auditsql_ddl_audit')) AS settings) AS v
WHERE NOT EXISTS (SELECT FROM (SELECT i.version, i.settings FROM "audit".installation AS i
                                ORDER BY i.installed_at DESC, i.ctid DESC LIMIT 1) AS newest
                  WHERE newest.version = v.version AND newest.settings = v.settings);

RESET ROLE;
