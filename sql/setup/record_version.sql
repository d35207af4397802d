-- Record the installed version and settings, unless they are those of the
-- newest row already: running install again changes nothing. event_trigger
-- says whether the event triggers guard this installation (a superuser
-- created them, now or before); `auditsql verify` expects them when it does.
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
                                          WHERE evtname = {{ ddl_trigger | literal }})) AS settings) AS v
WHERE NOT EXISTS (SELECT FROM (SELECT i.version, i.settings FROM {{ schema | ident }}.installation AS i
                                ORDER BY i.installed_at DESC, i.ctid DESC LIMIT 1) AS newest
                  WHERE newest.version = v.version AND newest.settings = v.settings);
