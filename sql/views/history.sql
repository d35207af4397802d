-- history: the log with whole rows, which events trims from an update's
-- `before` to keep events small.
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
