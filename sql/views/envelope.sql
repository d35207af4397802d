-- envelope: each event as one jsonb document, for SIEMs.
CREATE OR REPLACE VIEW {{ schema | ident }}.envelope AS
SELECT h.id, h.occurred_at,
       jsonb_build_object(
           'id', h.id,
           'occurredAt', to_jsonb(h.occurred_at),
           'category', h.category,
           'action', h.action,
           'admin', h.admin,
           'actor', jsonb_build_object('userId', h.actor_id, 'email', h.actor_email, 'role', h.actor_role),
           'resource', jsonb_build_object('entityType', h.entity_type, 'entityId', h.entity_id),
           'changes', jsonb_build_object('before', h.before, 'after', h.after,
                                         'changedColumns', to_jsonb(h.changed_columns)),
           'metadata', jsonb_build_object('ipAddress', coalesce(host(h.ip_address), h.ip_address_raw),
                                          'userAgent', h.user_agent, 'requestId', h.request_id,
                                          'dbUser', h.db_user, 'applicationName', h.application_name,
                                          'clientAddr', host(h.client_addr),
                                          'transactionId', h.txid, 'causedBy', h.caused_by)
       ) AS event
FROM {{ schema | ident }}.history AS h;

COMMENT ON VIEW {{ schema | ident }}.envelope IS 'auditsql: each event as one jsonb document (actor, resource, changes, metadata)';
