-- legal_holds: entities under legal hold. Their events survive retention
-- (see apply_retention). A row exists while the hold is in force; placing
-- and releasing a hold are recorded in the log as `legal_hold_placed` and
-- `legal_hold_released` events, which are the history of holds.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.legal_holds (
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    reason      text        NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by   text        NOT NULL DEFAULT pg_catalog."session_user"(),
    PRIMARY KEY (entity_type, entity_id)
);
COMMENT ON TABLE {{ schema | ident }}.legal_holds IS 'auditsql: entities whose events retention keeps';
