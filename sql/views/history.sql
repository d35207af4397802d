-- history: audit.events with whole row images. A data update stores the
-- whole new row in `after` but, unless an admin made it, only the old values
-- of the changed columns in `before` (smaller rows; the changed columns are
-- its keys). Here `before` is the whole old row again, and changed_columns
-- lists the columns an update changed, in jsonb key order (redacted columns
-- included, excluded ones not). Everything else is as in events.
CREATE OR REPLACE VIEW {{ schema | ident }}.history AS
SELECT e.id, e.occurred_at, e.txid, e.category, e.action, e.admin,
       e.entity_type, e.entity_id, e.previous_entity_id, e.caused_by,
       e.actor_id, e.actor_email, e.actor_role,
       e.ip_address, e.ip_address_raw, e.user_agent, e.request_id,
       e.db_user, e.application_name, e.client_addr,
       CASE WHEN e.category = 'data' AND e.action = 'updated'
            THEN coalesce(e.changed_columns, ARRAY(SELECT jsonb_object_keys(e.before))) END
           AS changed_columns,
       CASE WHEN e.category = 'data' AND e.action = 'updated' AND NOT e.admin
            THEN e.after || e.before ELSE e.before END AS before,
       e.after
FROM {{ schema | ident }}.events AS e;

COMMENT ON VIEW {{ schema | ident }}.history IS 'auditsql: events with whole before and after rows, and the changed columns of updates';
