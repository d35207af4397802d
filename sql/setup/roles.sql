-- The roles (docs/security.md). A non-superuser installing role becomes a
-- member of the owner so that it can create objects on its behalf: on
-- PostgreSQL 16+ a CREATEROLE role must grant itself that membership.
DO $roles$
BEGIN
    -- Roles belong to the cluster: an install into another database may be
    -- creating the same role at this moment, so a duplicate is not an error.
{%- for role in [owner, reader, writer, operator, admin] %}
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{ role | literal }}) THEN
        BEGIN
            CREATE ROLE {{ role | ident }} NOLOGIN;
            -- So that uninstall drops the roles install created, and no other.
            PERFORM set_config('auditsql.created_roles',
                               concat_ws(',', nullif(current_setting('auditsql.created_roles', true), ''),
                                         {{ role | literal }}), true);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
{%- endfor %}
    -- TRUNCATE capture reads rows as the owner with row_security off; with
    -- BYPASSRLS it can read tables under row-level security, otherwise such
    -- a TRUNCATE fails rather than lose rows. Only a superuser can grant it.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = {{ owner | literal }}) THEN
        ALTER ROLE {{ owner | ident }} BYPASSRLS;
    END IF;
    IF (SELECT rolcanlogin FROM pg_roles WHERE rolname = {{ owner | literal }}) THEN
        ALTER ROLE {{ owner | ident }} NOLOGIN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, {{ owner | literal }}, 'USAGE') THEN
        GRANT {{ owner | ident }} TO CURRENT_USER;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, {{ operator | literal }}, 'MEMBER') THEN
        BEGIN
            GRANT {{ operator | ident }} TO CURRENT_USER;
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, {{ admin | literal }}, 'MEMBER') THEN
        BEGIN
            GRANT {{ admin | ident }} TO CURRENT_USER;
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
    -- Audit administrators read the log, to judge what retention removes.
    IF NOT pg_has_role({{ admin | literal }}, {{ reader | literal }}, 'MEMBER') THEN
        BEGIN
            GRANT {{ reader | ident }} TO {{ admin | ident }};
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
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
            ({{ owner | literal }}, 'auditsql: owns the audit schema; NOLOGIN'),
            ({{ reader | literal }}, 'auditsql: may read the audit log'),
            ({{ writer | literal }}, 'auditsql: may log application events (log_event); grant it to application roles'),
            ({{ operator | literal }}, 'auditsql: may attach and detach the tables its members own'),
            ({{ admin | literal }}, 'auditsql: audit administrators: retention, legal holds, erasure; their DDL on audit objects is recorded'))
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
