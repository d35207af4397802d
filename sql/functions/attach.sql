-- attach: start auditing a table, or change how it is audited; with
-- baseline, also record the rows it has (snapshot), in this transaction.
-- baseline has no p_ prefix: callers write attach('t', baseline => true).
-- Builds of 0.2.0 before it had a baseline lack the last parameter, and
-- CREATE OR REPLACE would add an overload; later ones called it p_baseline,
-- and CREATE OR REPLACE cannot rename a parameter. Both go first (the
-- latter found by the old name, not to drop this one).
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach(regclass, text[], text, text[], text[], jsonb, boolean, boolean);
DO $drop$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
         WHERE n.nspname = {{ schema | literal }} AND p.proname = 'attach'
           AND 'p_baseline' = ANY (p.proargnames)
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', v_function);
    END LOOP;
END
$drop$;
-- Not SECURITY DEFINER: the table side (its triggers, the owner role's
-- SELECT) needs the rights of the table's owner, and attaching must give
-- nobody rights over the log; the audit side runs as the owner role in
-- attach_prepare and attach_complete, which judge the caller themselves.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.attach(
    p_table            regclass,
    p_id_columns       text[]  DEFAULT NULL,
    p_capture          text    DEFAULT NULL,
    p_exclude          text[]  DEFAULT NULL,
    p_redact           text[]  DEFAULT NULL,
    p_on_change        jsonb   DEFAULT NULL,
    p_require_actor    boolean DEFAULT NULL,
    p_trust_id_columns boolean DEFAULT NULL,
    baseline           boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_statement text;
    v_member    record;
    v_granted   boolean := false;
    v_usage     oid[] := '{}'::oid[];
    v_after     jsonb;
BEGIN
    IF NOT pg_has_role(current_user, {{ operator | literal }}, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: role % may not attach tables: it must be a member of %', current_user, {{ operator | literal }}
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_statement IN
        SELECT * FROM {{ schema | ident }}.attach_prepare(p_table, p_id_columns, p_capture, p_exclude,
                                                          p_redact, p_on_change, p_require_actor, p_trust_id_columns)
    LOOP
        BEGIN
            EXECUTE v_statement;
        EXCEPTION WHEN duplicate_object THEN
            -- The event triggers give each leaf partition its TRUNCATE
            -- trigger as soon as one of them is altered: already there,
            -- as attach_complete checks.
            NULL;
        END;
    END LOOP;
    FOR v_member IN
        SELECT c.oid::regclass AS rel, c.relnamespace AS nsp, n.nspname
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = p_table
           OR c.oid IN (SELECT t.relid FROM pg_partition_tree(p_table) AS t)
    LOOP
        IF NOT has_table_privilege({{ owner | literal }}, v_member.rel, 'SELECT') THEN
            EXECUTE format('GRANT SELECT ON %s TO %I', v_member.rel, {{ owner | literal }});
            v_granted := true;
        END IF;
        IF NOT has_schema_privilege({{ owner | literal }}, v_member.nsp, 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_member.nspname, {{ owner | literal }});
            v_usage := v_usage || v_member.nsp;
        END IF;
    END LOOP;
    PERFORM {{ schema | ident }}.attach_complete(p_table, v_granted, v_usage);
    IF attach.baseline THEN
        -- One transaction: creating the capture triggers locked the table
        -- against writes until it ends anyway (audit.snapshot, in committed
        -- batches, is for a table already attached).
        LOOP
            SELECT b.next_after INTO v_after FROM {{ schema | ident }}.snapshot_batch(p_table, v_after, 10000) AS b;
            EXIT WHEN v_after IS NULL;
        END LOOP;
    END IF;
END
$fn$;
