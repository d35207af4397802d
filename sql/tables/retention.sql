-- retention: the retention policy, one row at most.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.retention (
    singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    policy    text        NOT NULL CHECK (policy IN ('financial', 'medical', 'saas', 'custom')),
    keep      interval    NOT NULL CHECK (keep > interval '0'),
    set_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by    text        NOT NULL DEFAULT pg_catalog."session_user"()
);
COMMENT ON TABLE {{ schema | ident }}.retention IS 'auditsql: the retention policy (one row at most)';
