-- legal_holds: the holds in force; their history is in the log.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.legal_holds (
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    reason      text        NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by   text        NOT NULL DEFAULT pg_catalog."session_user"(),
    PRIMARY KEY (entity_type, entity_id)
);
COMMENT ON TABLE {{ schema | ident }}.legal_holds IS 'auditsql: entities whose events retention keeps';
