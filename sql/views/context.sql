-- context: the row type of a transaction's context, as the setting
-- auditsql.context holds it (the text of one such row) and as capture reads
-- it, with one cast. A view rather than a type so that every install
-- re-creates it with the functions; it has no rows. Columns may only be
-- added at the end: CREATE OR REPLACE VIEW keeps the others.
CREATE OR REPLACE VIEW {{ schema | ident }}.context AS
SELECT NULL::text AS actor_id, NULL::text AS actor_email, NULL::text AS actor_role,
       NULL::inet AS ip_address, NULL::text AS ip_address_raw,
       NULL::text AS user_agent, NULL::text AS request_id, NULL::text AS application_name
WHERE false;

COMMENT ON VIEW {{ schema | ident }}.context IS 'auditsql: the shape of a transaction''s context (the setting auditsql.context); no rows';
