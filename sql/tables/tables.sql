-- tables: which tables are audited and how their rows are identified.
-- Written only by attach() and detach(); the triggers themselves carry what
-- they need as arguments, so the write path never reads this table.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.tables (
    relid          oid         PRIMARY KEY,
    entity_type    text        NOT NULL,
    id_columns     text[]      NOT NULL,
    id_source      text        NOT NULL CHECK (id_source IN ('primary key', 'explicit')),
    partitioned    boolean     NOT NULL,
    granted_select boolean     NOT NULL,
    granted_usage  oid[]       NOT NULL DEFAULT '{}',
    attached_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attached_by    text        NOT NULL DEFAULT pg_catalog."session_user"()
);
COMMENT ON TABLE {{ schema | ident }}.tables IS 'auditsql: audited tables';
