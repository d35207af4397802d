{% from "fingerprint/catalog.sql" import fingerprint_line %}
-- Stamp every object this install defines with its fingerprint (the list
-- below is the install script's own CREATE statements, with the digest of
-- each; see auditsql/fingerprint.py), and bring the fingerprints of objects
-- created at run time (partitions and their guards) up to this version.
-- Objects install re-creates (functions, triggers, views, event triggers)
-- are stamped always; others only when new or unchanged since their last
-- stamp (see setup/snapshot.sql). Capture triggers on audited tables are
-- stamped by attach. Runs as the installing superuser, or else as the owner
-- role, and stamps what that role may comment on.
DO $stamp$
DECLARE
    v_object  record;
    v_comment text;
BEGIN
    FOR v_object IN
        SELECT o.target, o.comment, o.description, o.digest, m.source
        FROM {{ schema | ident }}.fingerprints() AS o
        LEFT JOIN jsonb_to_recordset({{ manifest | literal }}::jsonb)
               AS m(kind text, schema text, name text, "table" text, source text, body text,
                    replaced boolean)
               ON m.kind = o.kind AND m.name = o.name AND m."table" IS NOT DISTINCT FROM o.table_name
              AND m.schema IS NOT DISTINCT FROM o.schema_name
              AND (m.body IS NULL OR m.body = o.body_digest)
        WHERE NOT o.implicit
          AND (o.schema_name IN ({{ schema | literal }}, {{ guard_schema | literal }})
               OR o.kind = 'event trigger')
          AND (o.owner = current_user
               OR (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user))
          AND CASE
                  WHEN m.kind IS NOT NULL AND (m.replaced OR o.stamped_digest IS NULL) THEN true
                  WHEN m.kind IS NOT NULL OR o.kind IN ('table', 'trigger') THEN
                      o.classid::oid::text || '/' || o.objid::text
                      = ANY (string_to_array(current_setting('auditsql.intact', true), ','))
                  ELSE false
              END
    LOOP
        v_comment := concat_ws(E'\n', nullif(v_object.description, ''),
                               {{ fingerprint_line(version, 'v_object.digest', 'v_object.source') }});
        IF v_object.comment IS DISTINCT FROM v_comment THEN
            EXECUTE format('COMMENT ON %s IS %L', v_object.target, v_comment);
        END IF;
    END LOOP;
END
$stamp$;
