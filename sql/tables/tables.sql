-- tables: which tables are audited, how their rows are identified, and what
-- attach granted (so that detach revokes exactly that). Names and kinds are
-- not copied here: they are read from pg_class, so a rename cannot leave a
-- stale name behind. Written only by attach() and detach(); the generated
-- capture function of each table carries what it needs, so the write path
-- never reads it. capture is 'row' (a row trigger: the cheapest for the
-- one-row statements of OLTP) or 'statement' (statement triggers over
-- transition tables: the cheapest for bulk writes). Column policies (see
-- attach): exclude (never stored), redact (stored as a marker), on_change
-- (column -> auth action recorded when an update changes it), require_actor
-- (a write without an actor in context fails). id_trusted: explicit id
-- columns trusted without a unique index (attach --trust-id-columns).
-- triggers: the capture triggers as attach or refresh last recorded them,
-- and detached_partitions the partitions detached since, to tell later
-- which were dropped, re-created or left with a detached partition (see
-- refresh).
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
    detached_partitions oid[]       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE {{ schema | ident }}.tables IS 'auditsql: audited tables';
