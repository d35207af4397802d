-- Fingerprints as they were before this install's COMMENT statements
-- replace them, so that setup/stamp.sql stamps again only what carried none
-- or was unchanged: an object changed by hand keeps its old fingerprint, and
-- stays visibly changed.
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
FROM {{ schema | ident }}.fingerprints() AS o;
