-- installation: one row per install or upgrade, newest last. `auditsql status`
-- reads the installed version from the newest row.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.installation (
    version      text        NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    installed_by text        NOT NULL DEFAULT pg_catalog."session_user"(),
    settings     jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE {{ schema | ident }}.installation IS 'auditsql: installed versions, newest last';
