-- settings: installation-wide choices, one row. Changed only through
-- configure(), which regenerates every capture function that embeds them.
--   admin_roles  actor roles (auditsql.actor_role) whose events are admin
--                actions: whole before and after rows, whatever the column
--                policies except redaction
--   require_actor  every audited table refuses a write without an actor in
--                context (a table can also be strict on its own; see attach)
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.settings (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    admin_roles   text[]  NOT NULL DEFAULT '{admin}',
    require_actor boolean NOT NULL DEFAULT false
);
INSERT INTO {{ schema | ident }}.settings DEFAULT VALUES ON CONFLICT DO NOTHING;
COMMENT ON TABLE {{ schema | ident }}.settings IS 'auditsql: installation-wide settings (one row; change with configure())';
