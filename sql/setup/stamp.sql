{% from "fingerprint/catalog.sql" import fingerprint_line %}
-- Stamps what this install defines (the manifest, auditsql/manifest.py) and
-- the objects made at run time. What install re-creates is stamped always;
-- the rest only when it carried no fingerprint or was unchanged (see
-- setup/snapshot.sql). Stamps what the running role may comment on.
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
               {{ fingerprint_line(version, 'o.digest', 'm.source') }} AS line,
               v_changed ->> k.key AS old_line
        FROM {{ schema | ident }}.fingerprints() AS o
        LEFT JOIN jsonb_to_recordset({{ manifest | literal }}::jsonb)
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
          AND (o.schema_name IN ({{ schema | literal }}, {{ guard_schema | literal }})
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
