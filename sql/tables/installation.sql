-- installation: the installed versions, newest last.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.installation (
    version      text        NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    installed_by text        NOT NULL DEFAULT pg_catalog."session_user"(),
    settings     jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE {{ schema | ident }}.installation IS 'auditsql: installed versions, newest last';
