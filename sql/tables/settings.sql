-- settings: installation-wide choices, one row. Changed through configure():
-- every capture function embeds them.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.settings (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    admin_roles   text[]  NOT NULL DEFAULT '{admin}',
    require_actor boolean NOT NULL DEFAULT false
);
INSERT INTO {{ schema | ident }}.settings DEFAULT VALUES ON CONFLICT DO NOTHING;
COMMENT ON TABLE {{ schema | ident }}.settings IS 'auditsql: installation-wide settings (one row; change with configure())';
