{#- What this file defines (see auditsql/manifest.py). -#}
{%- set defines = [
    {"kind": "sequence", "name": "events_id_seq"},
    {"kind": "table", "name": "events"},
    {"kind": "table", "name": "events_default"},
    {"kind": "index", "name": "events_entity_idx", "table": "events"},
    {"kind": "index", "name": "events_actor_idx", "table": "events"},
    {"kind": "index", "name": "events_brin", "table": "events"},
    {"kind": "index", "name": "events_request_id_idx", "table": "events"},
    {"kind": "index", "name": "events_previous_entity_id_idx", "table": "events"},
] %}
-- events: the audit log. The default partition keeps an insert from failing
-- for want of a partition. Fixed-width columns first, for compact rows. The
-- indexed identifiers compare bytewise (COLLATE "C"): they are names and
-- keys, not prose, and every insert into their indexes compares them.
DO $category$
BEGIN
    CREATE TYPE {{ schema | ident }}.category AS ENUM ('data', 'auth', 'app', 'system');
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$category$;

CREATE SEQUENCE IF NOT EXISTS {{ schema | ident }}.events_id_seq AS bigint;

CREATE TABLE IF NOT EXISTS {{ schema | ident }}.events (
    id                 bigint      NOT NULL DEFAULT pg_catalog.nextval({{ ((schema | ident) ~ '.events_id_seq') | literal }}::pg_catalog.regclass),
    occurred_at        timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    txid               bigint      NOT NULL DEFAULT pg_catalog.txid_current(),
    caused_by          bigint,
    category           {{ schema | ident }}.category NOT NULL,
    admin              boolean     NOT NULL DEFAULT false,
    ip_address         inet,
    client_addr        inet,
    action             text        NOT NULL,
    entity_type        text COLLATE "C",
    entity_id          text COLLATE "C",
    previous_entity_id text COLLATE "C",
    actor_id           text COLLATE "C",
    actor_email        text,
    actor_role         text,
    user_agent         text,
    request_id         text,
    ip_address_raw     text,
    db_user            text        NOT NULL DEFAULT pg_catalog."session_user"(),
    application_name   text,
    changed_columns    text[],
    before             jsonb,
    after              jsonb
) PARTITION BY RANGE (occurred_at);

ALTER SEQUENCE {{ schema | ident }}.events_id_seq OWNED BY {{ schema | ident }}.events.id;

CREATE TABLE IF NOT EXISTS {{ schema | ident }}.events_default
    PARTITION OF {{ schema | ident }}.events DEFAULT;

-- Indexes cost every event an insert; each was measured (docs/performance.md).
-- The entity index: the id, then the type's hash. Integer keys repeat in
-- every table, so the id alone leads a reader of one row to the events of
-- every table that has that id; the type itself would put its name in
-- every entry, the hash costs four bytes (docs/performance.md). hashtext
-- is the hash of text that hash indexes store, so it stays the same across
-- PostgreSQL versions and pg_upgrade.
CREATE INDEX IF NOT EXISTS events_entity_idx
    ON {{ schema | ident }}.events (entity_id, pg_catalog.hashtext(entity_type));
-- Actor and time in one index, for "what did this actor do last week".
CREATE INDEX IF NOT EXISTS events_actor_idx
    ON {{ schema | ident }}.events (actor_id, occurred_at) WHERE actor_id IS NOT NULL;
-- The three columns grow with insertion order: one BRIN index serves time
-- and id ranges, and "everything this transaction did" (a transaction's id
-- is drawn before its first event; one that runs long widens the ranges its
-- events fall in, which a read of another transaction then reads too). A
-- btree on txid cost each event an index entry: 9,400 instructions and
-- 16.5 bytes (docs/performance.md).
CREATE INDEX IF NOT EXISTS events_brin
    ON {{ schema | ident }}.events USING brin (occurred_at, id, txid);
-- "Everything this request did".
CREATE INDEX IF NOT EXISTS events_request_id_idx
    ON {{ schema | ident }}.events (request_id) WHERE request_id IS NOT NULL;
-- Key changes are rare: a row's later keys are found from its earlier ones
-- at the cost of a predicate check for every other event.
CREATE INDEX IF NOT EXISTS events_previous_entity_id_idx
    ON {{ schema | ident }}.events (previous_entity_id) WHERE previous_entity_id IS NOT NULL;

COMMENT ON TABLE {{ schema | ident }}.events IS 'auditsql: the append-only audit log';
COMMENT ON COLUMN {{ schema | ident }}.events.id IS 'increasing event id; replay order';
COMMENT ON COLUMN {{ schema | ident }}.events.txid IS 'id of the writing transaction (txid_current())';
COMMENT ON COLUMN {{ schema | ident }}.events.action IS 'data: created, updated, deleted, truncated, snapshot; system: attached, detached, configured, retention_policy_set, retention_applied, default_rows_moved, legal_hold_placed, legal_hold_released; auth and app: the action given to log_event or an on-change policy';
COMMENT ON COLUMN {{ schema | ident }}.events.category IS 'data, auth, app or system';
COMMENT ON COLUMN {{ schema | ident }}.events.admin IS 'the actor role was one of the admin roles (audit.settings): before and after are whole rows, whatever the column policies except redaction';
COMMENT ON COLUMN {{ schema | ident }}.events.caused_by IS 'for an event an on-change policy wrote: the id of the data event that caused it';
COMMENT ON COLUMN {{ schema | ident }}.events.changed_columns IS 'admin updates only, whose before is the whole row: the columns that changed (see the history view for every update)';
COMMENT ON COLUMN {{ schema | ident }}.events.entity_type IS 'schema-qualified table name, quoted as needed';
COMMENT ON COLUMN {{ schema | ident }}.events.entity_id IS 'row identity: the key value as text, or a JSON array for several key columns';
COMMENT ON COLUMN {{ schema | ident }}.events.before IS 'row before the change: the whole row for deleted and truncated and for admin updates; for other updates, the old values of the columns that changed only (the whole old row is after || before; see the history view)';
COMMENT ON COLUMN {{ schema | ident }}.events.after IS 'row after the change: the whole row for created and updated';
COMMENT ON COLUMN {{ schema | ident }}.events.previous_entity_id IS 'set when an update changed the row key: the key before the update';
COMMENT ON COLUMN {{ schema | ident }}.events.ip_address IS 'auditsql.ip_address, when it is a valid inet';
COMMENT ON COLUMN {{ schema | ident }}.events.ip_address_raw IS 'auditsql.ip_address as given, when it is not a valid inet';
COMMENT ON COLUMN {{ schema | ident }}.events.client_addr IS 'address of the database client (inet_client_addr())';
COMMENT ON COLUMN {{ schema | ident }}.events.db_user IS 'session user of the writing connection';
