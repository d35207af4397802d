{#- Fingerprints, read from the catalog.

    catalog_objects() is one query listing every object auditsql may have
    created in schema `schema`, or in `guard_schema` (the event trigger
    function's): their functions, tables, sequences, indexes and views; the
    triggers on their tables or calling their functions (the guards, and the
    capture triggers attach creates on audited tables); the event triggers
    calling their functions. For each: the digest of its definition as the
    server holds it, and the fingerprint its comment carries.

    It is rendered twice: into the function fingerprints() (which install,
    attach and ensure_partitions use to stamp what they create), and into the
    query `auditsql verify` and `auditsql status` run themselves, so that
    checking never relies on code installed in the database. Both run it
    with the settings of pinned_settings(), which fix how definitions are
    printed (names qualified, constants in one format).

    Columns:
      classid, objid     the catalog and oid of the object
      kind               function, table, sequence, index, view, materialized
                         view, foreign table, trigger, event trigger
      schema_name        its schema (a trigger's: its table's; NULL for event
                         triggers), unquoted
      name               its name, unquoted
      table_name         triggers and indexes: the table's name, unquoted
      identity           how to show it: audit.attach(regclass,text[]),
                         auditsql_guard_row on audit.events
      target             what COMMENT ON takes to name it
      owner              owning role (a trigger's: its table's owner)
      implicit           made by PostgreSQL along with another object (a
                         partition's index or row trigger cloned from its
                         parent, the index of a constraint): not
                         fingerprinted itself
      enabled            triggers: tgenabled / evtenabled (O, D, R, A)
      function_schema    triggers: the schema of the function they call
      security_definer   functions: prosecdef
      config             functions: proconfig
      body_digest        functions: digest of prosrc
      digest             digest of the definition
      description        the comment without its fingerprint line
      comment            the whole comment
      stamped_version, stamped_digest, stamped_source
                         the fingerprint the comment carries, or NULL
-#}

{#- The settings that fix how definitions are printed: search_path (which
    names are qualified), quote_all_identifiers, and the output format of
    constants in defaults, partition bounds and WHEN clauses; and jit off,
    since compiling these small catalog queries would take longer than
    running them. `style` is 'function' (SET clauses of a function) or
    'local' (SET LOCAL statements). -#}
{% macro pinned_settings(style) -%}
{%- set pins = [
    ("search_path", "pg_catalog, pg_temp"),
    ("quote_all_identifiers", "off"),
    ("standard_conforming_strings", "on"),
    ("\"TimeZone\"", "'UTC'"),
    ("\"DateStyle\"", "'ISO, MDY'"),
    ("\"IntervalStyle\"", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("jit", "off"),
] -%}
{%- for name, value in pins -%}
{%- if style == 'function' %}
SET {{ name }} = {{ value }}
{%- else %}
SET LOCAL {{ name }} = {{ value }};
{%- endif -%}
{%- endfor -%}
{%- endmacro %}

{#- The objects; with `catalog` (pg_proc, pg_class, pg_trigger or
    pg_event_trigger) and `objids` (an SQL oid[] expression), only those
    objects of that catalog. -#}
{% macro catalog_objects(schema, guard_schema, catalog=none, objids=none) -%}
{%- macro only(oid) -%}
{%- if catalog is not none %}
      AND {{ oid }} = ANY ({{ objids }})
{%- endif -%}
{%- endmacro -%}
WITH s AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n
           WHERE n.nspname IN ({{ schema | literal }}, {{ guard_schema | literal }}))
SELECT o.classid, o.objid, o.kind, o.schema_name, o.name, o.table_name, o.identity, o.target,
       o.owner, o.implicit, o.enabled, o.function_schema, o.security_definer, o.config,
       o.body_digest,
       encode(sha256(convert_to(coalesce(o.definition, ''), 'UTF8')), 'hex') AS digest,
       CASE WHEN f.m IS NULL THEN coalesce(o.comment, '')
            ELSE rtrim(left(o.comment, length(o.comment) - length(f.last)), E'\n')
       END AS description,
       o.comment,
       f.m[1] AS stamped_version, f.m[2] AS stamped_digest, f.m[3] AS stamped_source
FROM (SELECT o.*, (SELECT d.description FROM pg_description AS d
                   WHERE d.objoid = o.objid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
      FROM (
{%- if catalog is none or catalog == 'pg_proc' %}
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid,
           'function'::text AS kind, n.nspname::text AS schema_name, p.proname::text AS name,
           NULL::text AS table_name, p.oid::regprocedure::text AS identity,
           format('ROUTINE %s', p.oid::regprocedure) AS target,
           pg_get_userbyid(p.proowner)::text AS owner, false AS implicit,
           NULL::text AS enabled, NULL::text AS function_schema,
           p.prosecdef AS security_definer, p.proconfig AS config,
           encode(sha256(convert_to(p.prosrc, 'UTF8')), 'hex') AS body_digest,
           CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
                ELSE format('%s %s', p.prokind, p.oid::regprocedure) END AS definition
    FROM pg_proc AS p
    JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE p.pronamespace IN (SELECT oid FROM s){{ only('p.oid') }}
{%- endif %}
{%- if catalog is none %}
    UNION ALL
{%- endif %}
{%- if catalog is none or catalog == 'pg_class' %}
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
                          WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                          WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          ELSE 'foreign table' END,
           n.nspname::text, c.relname::text,
           (SELECT t.relname::text FROM pg_index AS i JOIN pg_class AS t ON t.oid = i.indrelid
            WHERE i.indexrelid = c.oid),
           c.oid::regclass::text,
           format('%s %s', CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE'
                                          WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX'
                                          WHEN 'I' THEN 'INDEX' WHEN 'v' THEN 'VIEW'
                                          WHEN 'm' THEN 'MATERIALIZED VIEW'
                                          ELSE 'FOREIGN TABLE' END, c.oid::regclass),
           pg_get_userbyid(c.relowner)::text,
           c.relkind IN ('i', 'I')
           AND (c.relispartition
                OR EXISTS (SELECT FROM pg_constraint AS k
                           WHERE k.conindid = c.oid AND k.conrelid <> 0 AND k.contype IN ('p', 'u', 'x'))),
           NULL::text, NULL::text, NULL::boolean, NULL::text[], NULL::text,
           CASE
               WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)
               WHEN c.relkind IN ('v', 'm') THEN
                   concat_ws(E'\n', array_to_string(c.reloptions, ','), pg_get_viewdef(c.oid))
               WHEN c.relkind = 'S' THEN
                   (SELECT format('%s start %s increment %s min %s max %s cache %s cycle %s',
                                  format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
                                  q.seqmin, q.seqmax, q.seqcache, q.seqcycle)
                    FROM pg_sequence AS q WHERE q.seqrelid = c.oid)
               ELSE concat_ws(E'\n',
                   format('%s %s rls %s %s', c.relkind, c.relpersistence,
                          c.relrowsecurity, c.relforcerowsecurity),
                   array_to_string(c.reloptions, ','),
                   CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                   pg_get_expr(c.relpartbound, c.oid),
                   (SELECT string_agg(format('%I %s%s%s%s', a.attname,
                                             format_type(a.atttypid, a.atttypmod),
                                             CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                                             ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                                             nullif(' ' || a.attidentity::text || a.attgenerated::text, ' ')),
                                      ', ' ORDER BY a.attnum)
                    FROM pg_attribute AS a
                    LEFT JOIN pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                   (SELECT string_agg(format('%I %s', k.conname, pg_get_constraintdef(k.oid)),
                                      ', ' ORDER BY k.conname)
                    FROM pg_constraint AS k WHERE k.conrelid = c.oid))
           END
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relnamespace IN (SELECT oid FROM s)
      AND c.relkind IN ('r', 'p', 'S', 'i', 'I', 'v', 'm', 'f'){{ only('c.oid') }}
{%- endif %}
{%- if catalog is none %}
    UNION ALL
{%- endif %}
{%- if catalog is none or catalog == 'pg_trigger' %}
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 'trigger',
           n.nspname::text, t.tgname::text, c.relname::text,
           format('%I on %s', t.tgname, t.tgrelid::regclass),
           format('TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass),
           pg_get_userbyid(c.relowner)::text, t.tgparentid <> 0,
           t.tgenabled::text, fn.nspname::text, NULL::boolean, NULL::text[], NULL::text,
           pg_get_triggerdef(t.oid)
    FROM pg_trigger AS t
    JOIN pg_class AS c ON c.oid = t.tgrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_proc AS p ON p.oid = t.tgfoid
    JOIN pg_namespace AS fn ON fn.oid = p.pronamespace
    WHERE (NOT t.tgisinternal OR t.tgparentid <> 0)
      AND (c.relnamespace IN (SELECT oid FROM s) OR p.pronamespace IN (SELECT oid FROM s)){{ only('t.oid') }}
{%- endif %}
{%- if catalog is none %}
    UNION ALL
{%- endif %}
{%- if catalog is none or catalog == 'pg_event_trigger' %}
    SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass, e.oid, 'event trigger',
           NULL::text, e.evtname::text, NULL::text, quote_ident(e.evtname),
           format('EVENT TRIGGER %I', e.evtname),
           pg_get_userbyid(e.evtowner)::text, false,
           e.evtenabled::text, fn.nspname::text, NULL::boolean, NULL::text[], NULL::text,
           format('%I on %s tags %s execute %s', e.evtname, e.evtevent,
                  coalesce(array_to_string(e.evttags, ','), '*'), e.evtfoid::regprocedure)
    FROM pg_event_trigger AS e
    JOIN pg_proc AS p ON p.oid = e.evtfoid
    JOIN pg_namespace AS fn ON fn.oid = p.pronamespace
    WHERE p.pronamespace IN (SELECT oid FROM s){{ only('e.oid') }}
{%- endif %}
      ) AS o(classid, objid, kind, schema_name, name, table_name, identity, target, owner,
             implicit, enabled, function_schema, security_definer, config, body_digest, definition)
      OFFSET 0) AS o
CROSS JOIN LATERAL (SELECT l.last, regexp_match(l.last, {{ fingerprint_pattern() }}) AS m
                    FROM (SELECT reverse(split_part(reverse(o.comment), E'\n', 1)) AS last) AS l) AS f
{%- endmacro %}

{#- A fingerprint line: the last line of a comment (auditsql.fingerprint.FINGERPRINT). -#}
{% macro fingerprint_pattern() -%}
'^auditsql ([^ ]+) sha256:([0-9a-f]+)(?: source:([0-9a-f]+))?$'
{%- endmacro %}

{#- The fingerprint line for a version, a definition digest and a source
    digest (the last two SQL expressions; the source may be NULL). -#}
{% macro fingerprint_line(version, digest, source) -%}
format('auditsql %s sha256:%s', {{ version | literal }}, {{ digest }}) || coalesce(' source:' || {{ source }}, '')
{%- endmacro %}
