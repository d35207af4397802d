-- history: audit.events with whole row images. An updated event stores the
-- whole new row in `after` but only the old values of the columns that
-- changed in `before` (smaller rows, and the changed columns are its keys);
-- here `before` is the whole old row again, and changed_columns lists the
-- columns an update changed, in jsonb key order. Everything else is as in
-- events, column for column.
CREATE OR REPLACE VIEW {{ schema | ident }}.history AS
SELECT e.id, e.occurred_at, e.txid, e.action, e.entity_type, e.entity_id, e.previous_entity_id,
       e.actor_id, e.actor_email, e.actor_role,
       e.ip_address, e.ip_address_raw, e.user_agent, e.request_id,
       e.db_user, e.application_name, e.client_addr,
       CASE WHEN e.action = 'updated' THEN ARRAY(SELECT jsonb_object_keys(e.before)) END AS changed_columns,
       CASE WHEN e.action = 'updated' THEN e.after || e.before ELSE e.before END AS before,
       e.after
FROM {{ schema | ident }}.events AS e;

COMMENT ON VIEW {{ schema | ident }}.history IS 'auditsql: events with whole before and after rows, and the changed columns of updates';
