{% from "fingerprint/catalog.sql" import fingerprint_line %}
-- stamp: writes the fingerprints of objects made at run time into their
-- comments. Runs with the caller's rights: COMMENT ON needs the owner.
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
