-- retention: the retention policy, one row at most. `keep` is how long
-- events are kept; `policy` names it (financial, medical, saas) or says
-- custom. Written only by set_retention(), which also records the change as
-- a `retention_policy_set` event; read by apply_retention() and status.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.retention (
    singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    policy    text        NOT NULL CHECK (policy IN ('financial', 'medical', 'saas', 'custom')),
    keep      interval    NOT NULL CHECK (keep > interval '0'),
    set_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by    text        NOT NULL DEFAULT pg_catalog."session_user"()
);
COMMENT ON TABLE {{ schema | ident }}.retention IS 'auditsql: the retention policy (one row at most)';
