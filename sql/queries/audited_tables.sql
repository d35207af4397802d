{#- Every audited table, one row each, with what `auditsql status`, `verify`
    and `upgrade` judge it by (auditsql/catalog.py, AuditedTable). Run by
    the client itself, not through installed code, after
    fingerprint/settings.sql (names print qualified, as capture_triggers()
    writes them). The columns that need a word:
      id_unique            the explicit id columns are backed by a unique
                           index over NOT NULL columns (true for a primary key)
      capture_current      its capture function is what attach makes now
      missing_columns      ["redact password"...]: columns its settings name
                           that it no longer has (renamed or dropped)
      triggers             [{table, name, state}]: each capture trigger it
                           needs, state always | origin | replica | disabled
                           | missing | changed (not as attach makes it)
      clones_not_always    clones of its row trigger on partitions, not
                           enabled always
      unexpected           other triggers calling its capture function
      lost                 tables whose recorded capture triggers are gone
                           (dropped, or created again) since they were
                           last recorded -#}
{% from "fragments/macros.sql" import capture_trigger_forms, id_columns_unique %}
WITH t AS MATERIALIZED (
    SELECT t.*, c.oid IS NOT NULL AS present, coalesce(c.relkind = 'p', false) AS partitioned,
           CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname)
                ELSE 'dropped table ' || t.relid END AS entity_type,
           format('%I.%I', {{ schema | literal }}, 'capture_' || t.relid) AS function_name,
           to_regprocedure(format('%I.%I()', {{ schema | literal }}, 'capture_' || t.relid))::oid AS fn
    FROM {{ schema | ident }}.tables AS t
    LEFT JOIN pg_class AS c ON c.oid = t.relid
    LEFT JOIN pg_namespace AS n ON n.oid = c.relnamespace
), tree AS MATERIALIZED (
    SELECT t.relid, t.relid AS member, true AS root FROM t WHERE t.present
    UNION ALL
    SELECT t.relid, p.relid, false FROM t CROSS JOIN LATERAL pg_partition_tree(t.relid) AS p
    WHERE t.present AND p.isleaf AND p.relid <> t.relid
)
SELECT t.relid, t.entity_type, t.present, t.partitioned,
       t.id_columns, t.id_source, t.id_trusted,
       t.id_source <> 'explicit' OR (t.present AND {{ id_columns_unique('t.relid', 't.id_columns') }}) AS id_unique,
       t.capture, t.exclude, t.redact, t.on_change, t.require_actor,
       t.present AND t.fn IS NOT NULL
           AND (SELECT p.prosrc FROM pg_proc AS p WHERE p.oid = t.fn)
               IS NOT DISTINCT FROM {{ schema | ident }}.capture_source(t.relid::regclass) AS capture_current,
       ARRAY(SELECT format('%s %s', x.policy, quote_ident(x.col))
             FROM (SELECT 'id column', unnest(t.id_columns)
                   UNION ALL SELECT 'redact', unnest(t.redact)
                   UNION ALL SELECT 'on-change', jsonb_object_keys(t.on_change)
                   UNION ALL SELECT 'exclude', unnest(t.exclude)) AS x(policy, col)
             WHERE t.present
               AND NOT EXISTS (SELECT FROM pg_attribute AS a
                               WHERE a.attrelid = t.relid AND a.attname = x.col
                                 AND a.attnum > 0 AND NOT a.attisdropped)) AS missing_columns,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'table', m.member::regclass::text, 'name', f.name,
                            'state', CASE WHEN g.oid IS NULL THEN 'missing'
                                          WHEN pg_get_triggerdef(g.oid) <> format(f.definition, m.member::regclass, t.function_name)
                                          THEN 'changed'
                                          WHEN g.tgenabled = 'A' THEN 'always'
                                          WHEN g.tgenabled = 'O' THEN 'origin'
                                          WHEN g.tgenabled = 'R' THEN 'replica'
                                          ELSE 'disabled' END)
                        ORDER BY m.root DESC, m.member::regclass::text, f.name)
                 FROM tree AS m
                 CROSS JOIN {{ capture_trigger_forms('f') }}
                 LEFT JOIN pg_trigger AS g ON g.tgrelid = m.member AND g.tgname = f.name
                 WHERE m.relid = t.relid
                   AND ((m.root AND f.capture IN (t.capture, 'any')) OR (NOT m.root AND f.on_leaves))),
                '[]') AS triggers,
       ARRAY(SELECT format('%I on %s', g.tgname, g.tgrelid::regclass)
             FROM pg_trigger AS g
             WHERE g.tgfoid = t.fn AND g.tgparentid <> 0 AND g.tgenabled <> 'A'
             ORDER BY 1) AS clones_not_always,
       ARRAY(SELECT format('%I on %s', g.tgname, g.tgrelid::regclass)
             FROM pg_trigger AS g
             JOIN tree AS m ON m.relid = t.relid AND m.member = g.tgrelid
             WHERE g.tgfoid = t.fn AND g.tgparentid = 0
               AND NOT EXISTS (SELECT FROM {{ capture_trigger_forms('f') }}
                               WHERE f.name = g.tgname
                                 AND ((m.root AND f.capture IN (t.capture, 'any')) OR (NOT m.root AND f.on_leaves)))
             ORDER BY 1) AS unexpected,
       ARRAY(SELECT DISTINCT r.value ->> 'name'
             FROM jsonb_each(t.triggers) AS r
             WHERE NOT EXISTS (SELECT FROM pg_trigger AS g
                               WHERE g.oid = r.key::oid AND g.tgfoid = t.fn
                                 AND g.tgrelid = (r.value ->> 'table')::oid)
             ORDER BY 1) AS lost
FROM t
ORDER BY t.entity_type
