-- changes: one row per column an event changed, so that a question about
-- one column of one row is one WHERE. Read from audit.events, not the
-- history view: an update's stored before already holds exactly the old
-- values of the changed columns, unless an admin wrote it (changed_columns).
CREATE OR REPLACE VIEW {{ schema | ident }}.changes AS
SELECT e.id AS event_id, e.occurred_at, e.entity_type, e.entity_id,
       c.column_name, e.before -> c.column_name AS old_value, e.after -> c.column_name AS new_value,
       e.actor_id, e.actor_email, e.actor_role, e.admin AS is_admin, e.request_id, e.action
FROM {{ schema | ident }}.events AS e
CROSS JOIN LATERAL unnest(
    CASE e.action
    WHEN 'updated' THEN coalesce(e.changed_columns, ARRAY(SELECT jsonb_object_keys(e.before)))
    WHEN 'created' THEN ARRAY(SELECT jsonb_object_keys(e.after))
    ELSE ARRAY(SELECT jsonb_object_keys(e.before))
    END) AS c(column_name)
WHERE e.category = 'data' AND e.action IN ('created', 'updated', 'deleted', 'truncated');

COMMENT ON VIEW {{ schema | ident }}.changes IS 'auditsql: one row per changed column of each data event (created: old_value NULL; deleted and truncated: new_value NULL)';
