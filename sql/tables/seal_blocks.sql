-- seal_blocks: the hash chain over the log (docs/integrity.md). A block
-- covers the events of one partition (for the default partition, of one
-- month) that sealing found in its id range; `ids` says exactly which, so
-- that an id in no block was never committed when it was sealed, and a
-- sealed id that is gone was removed. Rows are only ever added.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.seal_blocks (
    block      bigint          PRIMARY KEY CHECK (block > 0),
    ids        int8multirange  NOT NULL,
    events     integer         NOT NULL CHECK (events > 0),
    first_at   timestamptz     NOT NULL,
    last_at    timestamptz     NOT NULL,
    partition  text            NOT NULL,
    hashes     bytea           NOT NULL CHECK (octet_length(hashes) = 32 * events),
    prev_hash  bytea           NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash       bytea           NOT NULL CHECK (octet_length(hash) = 32),
    sealed_at  timestamptz     NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE {{ schema | ident }}.seal_blocks IS 'auditsql: the hash chain over the log, one row per block';
