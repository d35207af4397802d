-- Records the installed version and settings, unless the newest row holds
-- them already, so that running install again changes nothing.
INSERT INTO {{ schema | ident }}.installation (version, settings)
SELECT v.version, v.settings
FROM (SELECT {{ version | literal }}::text AS version,
             pg_catalog.jsonb_build_object(
                 'schema', {{ schema | literal }}::text,
                 'owner', {{ owner | literal }}::text,
                 'reader', {{ reader | literal }}::text,
                 'writer', {{ writer | literal }}::text,
                 'operator', {{ operator | literal }}::text,
                 'admin', {{ admin | literal }}::text,
                 'event_trigger', EXISTS (SELECT FROM pg_catalog.pg_event_trigger
                                          WHERE evtname = {{ ddl_trigger | literal }}),
                 'created_roles', (SELECT coalesce(pg_catalog.jsonb_agg(DISTINCT r.name ORDER BY r.name), '[]')
                                   FROM (SELECT pg_catalog.jsonb_array_elements_text(i.settings -> 'created_roles')
                                         FROM (SELECT i.settings FROM {{ schema | ident }}.installation AS i
                                               ORDER BY i.installed_at DESC, i.ctid DESC LIMIT 1) AS i
                                         UNION
                                         SELECT pg_catalog.unnest(pg_catalog.string_to_array(
                                                    nullif(pg_catalog.current_setting('auditsql.created_roles', true), ''), ',')))
                                        AS r(name))) AS settings) AS v
WHERE NOT EXISTS (SELECT FROM (SELECT i.version, i.settings FROM {{ schema | ident }}.installation AS i
                                ORDER BY i.installed_at DESC, i.ctid DESC LIMIT 1) AS newest
                  WHERE newest.version = v.version AND newest.settings = v.settings);
