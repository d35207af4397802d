-- seal_erasures: for each event erase() changed, the digest of its before
-- and after as they were when first erased, which the chain commits to in
-- their place (docs/integrity.md#erasure). Rows are only ever added.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.seal_erasures (
    event_id      bigint      PRIMARY KEY,
    images_sha256 bytea       NOT NULL CHECK (octet_length(images_sha256) = 32),
    erased_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE {{ schema | ident }}.seal_erasures IS 'auditsql: digests of values erase() replaced, which the chain keeps committing to';
