-- Fingerprints before this install changes anything: which objects of an
-- earlier install still match theirs. Objects install creates only when
-- missing (tables, sequences, indexes), and objects created at run time
-- (partitions and their guards), are stamped again at the end only if they
-- were unchanged here, so that one changed by hand stays visibly changed.
SELECT pg_catalog.set_config(
    'auditsql.intact',
    coalesce((SELECT pg_catalog.string_agg(o.classid::oid::text || '/' || o.objid::text, ',')
              FROM {{ schema | ident }}.fingerprints() AS o
              WHERE o.stamped_digest = o.digest), ''),
    true) IS NOT NULL AS fingerprints_read;
