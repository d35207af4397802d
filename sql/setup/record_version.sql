-- Record the installed version, unless it is already the newest row: running
-- install again changes nothing.
INSERT INTO {{ schema | ident }}.installation (version, settings)
SELECT {{ version | literal }},
       pg_catalog.jsonb_build_object('schema', {{ schema | literal }},
                                     'owner', {{ owner | literal }},
                                     'reader', {{ reader | literal }},
                                     'writer', {{ writer | literal }})
WHERE {{ version | literal }} IS DISTINCT FROM
      (SELECT version FROM {{ schema | ident }}.installation
       ORDER BY installed_at DESC, ctid DESC LIMIT 1);
