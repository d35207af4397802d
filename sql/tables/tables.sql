-- tables: the audited tables. Names are read from pg_class, never copied
-- here, so that a rename leaves nothing stale.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.tables (
    relid               oid         PRIMARY KEY,
    id_columns          text[]      NOT NULL,
    id_source           text        NOT NULL CHECK (id_source IN ('primary key', 'explicit')),
    capture             text        NOT NULL DEFAULT 'row' CHECK (capture IN ('row', 'statement')),
    exclude             text[]      NOT NULL DEFAULT '{}',
    redact              text[]      NOT NULL DEFAULT '{}',
    on_change           jsonb       NOT NULL DEFAULT '{}',
    require_actor       boolean     NOT NULL DEFAULT false,
    granted_select      boolean     NOT NULL,
    granted_usage       oid[]       NOT NULL DEFAULT '{}',
    attached_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attached_by         text        NOT NULL DEFAULT pg_catalog."session_user"(),
    id_trusted          boolean     NOT NULL DEFAULT false,
    triggers            jsonb       NOT NULL DEFAULT '{}',
    detached_partitions oid[]       NOT NULL DEFAULT '{}',
    -- The table and partitions on which the owner role held SELECT before
    -- the table was first attached, which detach leaves as they were.
    select_kept         oid[]       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE {{ schema | ident }}.tables IS 'auditsql: audited tables';
