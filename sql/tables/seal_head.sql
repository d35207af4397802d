-- seal_head: the end of the chain, one row. Sealing locks it, so that
-- sealers take turns; nothing that writes events ever touches it. The
-- mark is an id bound waiting for the transactions that might still add
-- below it to end (see functions/seal.sql).
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.seal_head (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    block      bigint      NOT NULL DEFAULT 0,
    hash       bytea       NOT NULL DEFAULT pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'),
    sealed_to  bigint      NOT NULL DEFAULT 0,
    mark_id    bigint,
    mark_xid   bigint,
    sealed_at  timestamptz
);
INSERT INTO {{ schema | ident }}.seal_head DEFAULT VALUES ON CONFLICT DO NOTHING;
COMMENT ON TABLE {{ schema | ident }}.seal_head IS 'auditsql: the end of the hash chain (one row)';
