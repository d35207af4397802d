-- seal_retired: the partitions retention dropped, with the last block of
-- the chain then: sealed events of those ranges are gone by policy, not
-- deleted. Rows are only ever added.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.seal_retired (
    partition    text        NOT NULL,
    range_from   timestamptz NOT NULL,
    range_to     timestamptz NOT NULL,
    rows_removed bigint      NOT NULL,
    rows_kept    bigint      NOT NULL,
    last_block   bigint      NOT NULL,
    last_hash    bytea       NOT NULL,
    dropped_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE {{ schema | ident }}.seal_retired IS 'auditsql: partitions retention dropped, and the chain head when it did';
