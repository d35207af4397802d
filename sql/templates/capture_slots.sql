{#- The slots of the capture templates (capture_row.sql and
    capture_statement.sql): the pieces of a table's capture function that
    depend on the table, its key, its column policies or the settings.
    Generation has two stages. At install, Jinja renders each template into a
    format() template, every slot as slot(name) gives it: %N$s, N the slot's
    place in capture_slots. At attach, audit.capture_source() computes each
    piece into its variable v_<name>, quoting what it takes from the catalog
    and the tables, and passes them to format() in the order of
    capture_slots, a list it renders from here too. Both sides follow this
    one list, so neither a slot's number nor its argument can be written by
    hand (tests/unit/test_render.py checks that none is).

    Each slot, with what capture_source puts in it. s.oj and s.nj are the old
    and new row images of the INSERT ... SELECT that records an event; p.oN
    and p.nN a column's old and new values, where statement capture carries
    them through its join as they are. -#}
{%- set capture_slots = {
    'entity_type':    "events.entity_type: an expression for the table's name",
    'new_id':         'events.entity_id of the new image s.nj',
    'old_id':         'events.entity_id of the old image s.oj',
    'known':          "row capture: a condition true when the new image s.nj has only the columns that images kept at attach time, or 'true' where the event triggers refresh capture after every ALTER TABLE",
    'diff':           'before of an update by anyone but an admin: the old values of the changed columns',
    'image_suffix':   "an operator and operand laid after an image, dropping excluded columns (unless the actor is an admin), or ''",
    'redaction':      "an operator and operand laid after an image, marking redacted columns, or ''",
    'admin_roles':    'the admin roles of audit.settings, as a text[] literal',
    'checks':         "statements run before anything is recorded (a required actor, a partitioned table's tree), or ''",
    'update_filter':  'the condition under which an update by anyone but an admin is recorded',
    'admin_changed':  'changed_columns of an update by an admin',
    'on_change_with': "'WITH ins AS (' when the table has on-change policies, or ''",
    'on_change':      "what follows the data event's INSERT after an update by anyone but an admin: the auth events of on-change policies, or ''",
    'admin_on_change': "the same after an update by an admin, or ''",
    'all_columns':    "every column, as a text[] literal",
    'redact_columns': "the redacted columns, as a text[] literal",
    'pin_declare':    "the declaration of v_saved, which pin and restore use, or ''",
    'pin':            "for a table with a column whose image depends on the row-image settings, the statement that pins them when a session changed them, else ''",
    'restore':        "the statement that puts them back after pin, or ''",
    'same':           'statement capture: a text[] expression, the columns whose value did not change',
    'typed_old':      "statement capture: the columns carried as they are, from the old rows (', auditsql_old.x AS oN' each), or ''",
    'typed_new':      "the same from the new rows (', auditsql_new.x AS nN' each), or ''",
    'signature':      "statement capture: the table's columns at generation (column_signature), as a text[] literal",
    'table_oid':      "the audited table's oid",
    'casts_checked':  "a condition true before any row image is built, or an error when a cast to json of a user-defined type could run as the owner role: 'true' where the event triggers refuse such casts, else the probe of capture_macros.sql",
} -%}

{#- The format() placeholder of the slot `name`; an error for a name that is
    not in capture_slots. -#}
{%- macro slot(name) -%}
%{{ (capture_slots | list).index(name) + 1 }}$s
{%- endmacro -%}
