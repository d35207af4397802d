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
FROM {{ schema | ident }}.fingerprints() AS o;
