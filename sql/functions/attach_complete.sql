-- attach_complete: the end of attach, as the owner role: refuses unless
-- capture is in force, then records the grants and the triggers.
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach_complete(regclass, boolean, oid[]);
-- Builds of 0.2.0 took a fourth argument for a while.
DROP FUNCTION IF EXISTS {{ schema | ident }}.attach_complete(regclass, boolean, oid[], oid[]);
CREATE FUNCTION {{ schema | ident }}.attach_complete(
    p_table          regclass,
    p_granted_select boolean,
    p_granted_usage  oid[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_table    {{ schema | ident }}.tables;
    v_rel      pg_class;
    v_function regprocedure := to_regprocedure(format('%I.%I()', {{ schema | literal }}, 'capture_' || p_table::oid));
    v_missing  text;
BEGIN
    SELECT * INTO v_table FROM {{ schema | ident }}.tables WHERE relid = p_table;
    SELECT * INTO v_rel FROM pg_class WHERE oid = p_table;
    IF v_table IS NULL OR v_function IS NULL OR NOT pg_has_role(session_user, v_rel.relowner, 'MEMBER') THEN
        RAISE EXCEPTION 'auditsql: % is not being attached by its owner', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT string_agg(format('%I on %s', c.name, c.rel), ', ') INTO v_missing
    FROM {{ schema | ident }}.capture_triggers(p_table, v_table.capture) AS c
    WHERE c.found IS DISTINCT FROM c.definition OR c.enabled <> 'A';
    v_missing := concat_ws(', ', v_missing,
        (SELECT string_agg(format('%I on %s', t.tgname, t.tgrelid::regclass), ', ')
         FROM pg_trigger AS t WHERE t.tgfoid = v_function AND t.tgenabled <> 'A'));
    IF v_missing <> '' THEN
        RAISE EXCEPTION 'auditsql: capture of % is not in force: % not there as attach makes it, or not enabled always', p_table, v_missing
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE {{ schema | ident }}.tables
       SET granted_select = granted_select OR coalesce(p_granted_select, false),
           granted_usage = ARRAY(SELECT DISTINCT u FROM unnest(granted_usage || coalesce(p_granted_usage, '{}')) AS u ORDER BY 1)
     WHERE relid = p_table;
    -- A partitioned table's owner keeps EXECUTE: PostgreSQL checks it when
    -- it clones the row trigger onto a partition created later.
    IF v_rel.relkind <> 'p' THEN
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', v_function, v_rel.relowner::regrole);
    END IF;
    PERFORM {{ schema | ident }}.refresh(p_table);
END
$fn$;
