{#- What this file defines (see auditsql/manifest.py). -#}
{%- set defines = [
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "events"},
    {"kind": "trigger", "name": "auditsql_guard_row", "table": "events"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "events_default"},
    {"kind": "trigger", "name": "auditsql_record", "table": "retention"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "retention"},
    {"kind": "trigger", "name": "auditsql_record", "table": "legal_holds"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "legal_holds"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "seal_blocks"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "seal_erasures"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "seal_retired"},
    {"kind": "trigger", "name": "auditsql_guard_statement", "table": "seal_head"},
] %}
-- The guards. Statement triggers refuse even when no row matches, but are
-- not cloned onto partitions; the row trigger on the parent is, and so also
-- guards a partition made by hand.
DROP TRIGGER IF EXISTS auditsql_guard_statement ON {{ schema | ident }}.events;
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {{ schema | ident }}.events
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema | ident }}.guard();
ALTER TABLE {{ schema | ident }}.events ENABLE ALWAYS TRIGGER auditsql_guard_statement;

DROP TRIGGER IF EXISTS auditsql_guard_row ON {{ schema | ident }}.events;
CREATE TRIGGER auditsql_guard_row
    BEFORE UPDATE OR DELETE ON {{ schema | ident }}.events
    FOR EACH ROW EXECUTE FUNCTION {{ schema | ident }}.guard();
ALTER TABLE {{ schema | ident }}.events ENABLE ALWAYS TRIGGER auditsql_guard_row;

DROP TRIGGER IF EXISTS auditsql_guard_statement ON {{ schema | ident }}.events_default;
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {{ schema | ident }}.events_default
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema | ident }}.guard();
ALTER TABLE {{ schema | ident }}.events_default ENABLE ALWAYS TRIGGER auditsql_guard_statement;

-- A row trigger records each change of the policy and the holds; a
-- statement trigger refuses what would erase one unrecorded.
DROP TRIGGER IF EXISTS auditsql_record ON {{ schema | ident }}.retention;
CREATE TRIGGER auditsql_record
    AFTER INSERT OR UPDATE ON {{ schema | ident }}.retention
    FOR EACH ROW EXECUTE FUNCTION {{ schema | ident }}.record_policy();
DROP TRIGGER IF EXISTS auditsql_guard_statement ON {{ schema | ident }}.retention;
CREATE TRIGGER auditsql_guard_statement
    BEFORE DELETE OR TRUNCATE ON {{ schema | ident }}.retention
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema | ident }}.record_policy();
ALTER TABLE {{ schema | ident }}.retention
    ENABLE ALWAYS TRIGGER auditsql_record, ENABLE ALWAYS TRIGGER auditsql_guard_statement;

DROP TRIGGER IF EXISTS auditsql_record ON {{ schema | ident }}.legal_holds;
CREATE TRIGGER auditsql_record
    AFTER INSERT OR DELETE ON {{ schema | ident }}.legal_holds
    FOR EACH ROW EXECUTE FUNCTION {{ schema | ident }}.record_hold();
DROP TRIGGER IF EXISTS auditsql_guard_statement ON {{ schema | ident }}.legal_holds;
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR TRUNCATE ON {{ schema | ident }}.legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema | ident }}.record_hold();
ALTER TABLE {{ schema | ident }}.legal_holds
    ENABLE ALWAYS TRIGGER auditsql_record, ENABLE ALWAYS TRIGGER auditsql_guard_statement;

-- The chain is kept like the log; its head row only moves forward, by
-- seal() (docs/integrity.md).
{%- for table in ["seal_blocks", "seal_erasures", "seal_retired"] %}
DROP TRIGGER IF EXISTS auditsql_guard_statement ON {{ schema | ident }}.{{ table | ident }};
CREATE TRIGGER auditsql_guard_statement
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {{ schema | ident }}.{{ table | ident }}
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema | ident }}.guard();
ALTER TABLE {{ schema | ident }}.{{ table | ident }} ENABLE ALWAYS TRIGGER auditsql_guard_statement;
{%- endfor %}
DROP TRIGGER IF EXISTS auditsql_guard_statement ON {{ schema | ident }}.seal_head;
CREATE TRIGGER auditsql_guard_statement
    BEFORE DELETE OR TRUNCATE ON {{ schema | ident }}.seal_head
    FOR EACH STATEMENT EXECUTE FUNCTION {{ schema | ident }}.guard();
ALTER TABLE {{ schema | ident }}.seal_head ENABLE ALWAYS TRIGGER auditsql_guard_statement;

SELECT {{ schema | ident }}.ensure_partitions(pg_catalog.now(), 2);
