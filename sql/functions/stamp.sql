{% from "fingerprint/catalog.sql" import fingerprint_line %}
-- stamp: write the fingerprints of objects created at run time (the
-- triggers attach creates, the partitions ensure_partitions creates) into
-- their comments: the digest of each definition now, and the version. The
-- comments' other lines are kept. Returns how many objects it stamped.
-- The install script stamps its own objects (setup/stamp.sql). Runs with
-- the caller's rights: COMMENT ON needs the object's owner.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.stamp(
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
    FOR v_object IN SELECT * FROM {{ schema | ident }}.fingerprints(p_classid, p_objids) LOOP
        v_comment := concat_ws(E'\n', nullif(v_object.description, ''),
                               {{ fingerprint_line(version, 'v_object.digest', 'NULL') }});
        IF v_object.comment IS DISTINCT FROM v_comment THEN
            EXECUTE format('COMMENT ON %s IS %L', v_object.target, v_comment);
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$fn$;
