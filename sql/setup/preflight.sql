-- Preflight: refuses a server or a role that cannot hold auditsql, before
-- anything is created.
SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('auditsql.install'));

DO $preflight$
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RAISE EXCEPTION 'auditsql needs PostgreSQL 14 or newer; this server is %',
            current_setting('server_version')
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ owner | literal }})
       OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ reader | literal }})
       OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ writer | literal }})
       OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ operator | literal }})
       OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ admin | literal }}) THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role % may not create roles; install as a superuser or a role with CREATEROLE, or create roles %, %, %, % and % first',
                current_user, {{ owner | literal }}, {{ reader | literal }}, {{ writer | literal }}, {{ operator | literal }}, {{ admin | literal }}
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    -- DDL on audit objects of a guarded installation passes only for a
    -- superuser's session: the owner role's members may not rewrite it.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
       AND EXISTS (SELECT FROM pg_event_trigger
                   WHERE evtname IN ({{ ddl_trigger | literal }}, {{ drop_trigger | literal }})) THEN
        RAISE EXCEPTION 'schema % is guarded by event triggers, which only a superuser''s install may change; role % is not one: install or upgrade as a superuser',
            {{ schema | literal }}, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
{%- if event_trigger %}
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'this install script creates event triggers, which only a superuser may do; role % is not one: render the script for the role that runs it (auditsql install --dry-run with its DSN, or --dry-run --no-event-triggers)',
            current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
{%- endif %}
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = {{ schema | literal }})
       AND NOT has_database_privilege(current_database(), 'CREATE') THEN
        RAISE EXCEPTION 'role % may not create schemas in database %; grant it CREATE on the database or install as its owner',
            current_user, current_database()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
               WHERE n.nspname = {{ schema | literal }} AND r.rolname <> {{ owner | literal }}) THEN
        RAISE EXCEPTION 'schema % already exists and is not owned by %; choose another schema with --schema',
            {{ schema | literal }}, {{ owner | literal }}
            USING ERRCODE = 'duplicate_schema';
    END IF;
END
$preflight$;
