"""Capture on ordinary tables: what each statement records, keys, attach/detach."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from psycopg import sql

from auditsql import render
from auditsql.installer import install
from auditsql.render import Settings
from tests.harness.server import Server
from tests.sql import sqltools
from tests.sql.sqltools import (
    OPERATOR,
    OWNER,
    ROW_ACTIONS,
    AppRole,
    Conn,
    attach,
    brief,
    connect,
    count_events,
    detach,
    events,
    expect_error,
    quiet_ddl,
    run,
    scalar,
    triggers,
)

ORDERS = "public.orders"
CAPTURE_TRIGGERS = {
    "statement": [
        ("auditsql_capture_delete", "A"),
        ("auditsql_capture_insert", "A"),
        ("auditsql_capture_truncate", "A"),
        ("auditsql_capture_update", "A"),
    ],
    "row": [
        ("auditsql_capture_row", "A"),
        ("auditsql_capture_truncate", "A"),
    ],
}


@pytest.fixture(autouse=True, params=["row", "statement"])
def capture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs once per capture mode: the generated code differs."""
    monkeypatch.setattr(sqltools, "DEFAULT_CAPTURE", request.param)
    return str(request.param)


@pytest.fixture
def orders(su: Conn) -> str:
    """An attached table ``orders`` holding rows 1, 2 and 3."""
    run(
        su,
        "CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric, note text)",
        "INSERT INTO orders VALUES (1, 'new', 10, 'a'), (2, 'new', 20, 'b'), (3, 'new', 30, 'c')",
    )
    attach(su, "orders")
    return ORDERS


def test_insert_records_after(su: Conn, orders: str) -> None:
    su.execute("INSERT INTO orders VALUES (4, 'new', 1.50, NULL)")
    [event] = events(su, orders)
    assert event["action"] == "created"
    assert event["entity_type"] == "public.orders"
    assert event["entity_id"] == "4"
    assert event["after"] == {"id": 4, "status": "new", "amount": 1.50, "note": None}
    assert event["before"] is None
    assert event["changed_columns"] is None
    assert event["previous_entity_id"] is None


def test_insert_of_many_rows_records_each(su: Conn, orders: str) -> None:
    su.execute("INSERT INTO orders SELECT g, 'bulk', g, NULL FROM generate_series(10, 14) g")
    assert brief(events(su, orders)) == [("created", str(i)) for i in range(10, 15)]


def test_occurred_at_is_the_statement_start_time(su: Conn, orders: str) -> None:
    """README: `occurred_at` is the "statement start time
    (`statement_timestamp()`)": the events of one statement share it, two
    statements of one transaction differ, and neither is the transaction's
    start (`now()`)."""
    with su.transaction():
        started = scalar(su, "SELECT now()")
        su.execute("SELECT pg_sleep(0.02)")
        first = scalar(su, "WITH u AS (UPDATE orders SET note = 'x' RETURNING 1)"
                           " SELECT DISTINCT statement_timestamp() FROM u")
        su.execute("SELECT pg_sleep(0.02)")
        second = scalar(su, "INSERT INTO orders VALUES (4, 'new', 1, NULL)"
                            " RETURNING statement_timestamp()")
    updated = events(su, orders, actions=["updated"])
    [created] = events(su, orders, actions=["created"])
    assert len(updated) == 3
    assert {e["occurred_at"] for e in updated} == {first}
    assert created["occurred_at"] == second
    assert started < first < second


def test_delete_records_before(su: Conn, orders: str) -> None:
    su.execute("DELETE FROM orders WHERE id = 2")
    [event] = events(su, orders)
    assert (event["action"], event["entity_id"]) == ("deleted", "2")
    assert event["before"] == {"id": 2, "status": "new", "amount": 20, "note": "b"}
    assert event["after"] is None


def test_update_records_before_after_and_changed_columns_in_key_order(su: Conn, orders: str) -> None:
    su.execute("UPDATE orders SET note = 'z', status = 'paid', amount = 10.0 WHERE id = 1")
    [event] = events(su, orders)
    assert (event["action"], event["entity_id"]) == ("updated", "1")
    assert event["before"] == {"id": 1, "status": "new", "amount": 10, "note": "a"}
    assert event["after"] == {"id": 1, "status": "paid", "amount": 10, "note": "z"}
    # jsonb key order: shorter names first, then byte order
    assert event["changed_columns"] == ["note", "amount", "status"]
    assert event["previous_entity_id"] is None


def test_numeric_scale_change_is_a_change(su: Conn, orders: str) -> None:
    su.execute("UPDATE orders SET amount = 10.00 WHERE id = 1")
    [event] = events(su, orders)
    assert event["changed_columns"] == ["amount"]
    amounts = scalar(su, "SELECT array[before ->> 'amount', after ->> 'amount']"
                         " FROM audit.events WHERE id = %s", (event["id"],))
    assert amounts == ["10", "10.00"]


def test_update_stores_the_old_values_of_changed_columns_only(su: Conn, orders: str) -> None:
    su.execute("UPDATE orders SET note = 'z', status = 'paid' WHERE id = 1")
    [stored] = events(su, orders, source="audit.events")
    assert stored["before"] == {"note": "a", "status": "new"}
    assert stored["after"] == {"id": 1, "status": "paid", "amount": 10, "note": "z"}
    [full] = events(su, orders)
    assert full["before"] == {"id": 1, "status": "new", "amount": 10, "note": "a"}


@pytest.mark.parametrize("ddl, update, changed, before", [
    ("ALTER TABLE orders ADD COLUMN extra text DEFAULT 'e'",
     "UPDATE orders SET extra = 'f' WHERE id = 1", ["extra"], {"extra": "e"}),
    ("ALTER TABLE orders RENAME COLUMN note TO remark",
     "UPDATE orders SET remark = 'r' WHERE id = 1", ["remark"], {"remark": "a"}),
    ("ALTER TABLE orders DROP COLUMN note",
     "UPDATE orders SET status = 's' WHERE id = 1", ["status"], {"status": "new"}),
    # the same name and type again, in another place in the row
    ("ALTER TABLE orders DROP COLUMN note, ADD COLUMN note text",
     "UPDATE orders SET note = 'n' WHERE id = 1", ["note"], {"note": None}),
    ("ALTER TABLE orders ALTER COLUMN note TYPE varchar(5)",
     "UPDATE orders SET note = 'v' WHERE id = 1", ["note"], {"note": "a"}),
])
def test_columns_altered_after_attach_are_still_compared(
        su: Conn, orders: str, ddl: str, update: str, changed: list[str],
        before: dict[str, object]) -> None:
    """The generated comparison knows the columns of attach time; a row with
    other columns falls back to comparing every value. The session has run
    the capture code before the change, so that its plans are cached."""
    run(su, "UPDATE orders SET note = note", ddl, update)
    [event] = events(su, orders)
    assert event["changed_columns"] == changed
    [stored] = events(su, orders, source="audit.events")
    assert stored["before"] == before


def test_column_type_changed_after_attach_until_attach_runs_again(su: Conn, orders: str) -> None:
    """The generated comparison chose jsonb equality for a text column; once
    the column holds numbers, a change of scale alone is still recorded (the
    row differs) but not named, until the function is generated again."""
    quiet_ddl(su, "ALTER TABLE orders ALTER COLUMN status TYPE numeric USING 1")
    su.execute("UPDATE orders SET status = 1.0 WHERE id = 1")
    [event] = events(su, orders)
    assert event["after"]["status"] == 1.0
    assert not capture_current(su, "orders")
    attach(su, "orders")
    assert capture_current(su, "orders")
    su.execute("UPDATE orders SET status = 1.00 WHERE id = 1")
    [_, event] = events(su, orders)
    assert event["changed_columns"] == ["status"]
    [_, stored] = events(su, orders, source="audit.events")
    assert stored["before"] == {"status": 1.0}
    assert scalar(su, "SELECT before ->> 'status' FROM audit.events WHERE id = %s",
                  (event["id"],)) == "1.0"


def test_row_capture_asks_images_for_their_columns_only_without_event_triggers(
        su: Conn, orders: str, capture: str) -> None:
    """Where the event triggers refresh capture after every ALTER TABLE, row
    capture does not ask each update's image whether the table still has the
    columns of attach time; a function that was not refreshed stores a
    column added since in `before` whether it changed or not. Without the
    event triggers each image is asked, and the generic comparison names
    exactly the changed columns."""
    if capture != "row":
        pytest.skip("statement capture asks the catalog once per statement")
    # An admin's update asks the image in any case (what it stores differs).
    check = "(s.nj OPERATOR(pg_catalog.-) '{id,status,amount,note}'::pg_catalog.text[])"
    assert scalar(su, "SELECT audit.capture_source('orders')").count(check) == 1
    quiet_ddl(su, "ALTER TABLE orders ADD COLUMN extra text DEFAULT 'e'")
    su.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    [stored] = events(su, orders, source="audit.events")
    assert stored["before"] == {"status": "new", "extra": "e"}
    run(su, "ALTER EVENT TRIGGER auditsql_ddl_audit DISABLE")
    try:
        attach(su, "orders")
        check = check.replace("note}", "note,extra}")
        assert scalar(su, "SELECT audit.capture_source('orders')").count(check) == 2
        su.execute("UPDATE orders SET status = 'sent' WHERE id = 1")
        [_, stored] = events(su, orders, source="audit.events")
        assert stored["before"] == {"status": "paid"}
    finally:
        run(su, "ALTER EVENT TRIGGER auditsql_ddl_audit ENABLE ALWAYS")


def test_alter_table_brings_capture_up_to_date_at_once(su: Conn, app_conn: Conn) -> None:
    """With the event triggers, ALTER TABLE by the table's owner (no audit
    role) is followed by refresh(): the capture function matches the table
    again before the next write, and nothing is recorded about it."""
    run(app_conn, "CREATE TABLE app_orders (id int PRIMARY KEY, status text)",
        "INSERT INTO app_orders VALUES (1, '1')")
    attach(su, "app_orders")
    before = count_events(su)
    app_conn.execute("ALTER TABLE app_orders ALTER COLUMN status TYPE numeric USING 1")
    assert capture_current(su, "app_orders")
    app_conn.execute("UPDATE app_orders SET status = 1.00")
    [event] = events(su, "public.app_orders")
    assert event["changed_columns"] == ["status"]
    assert count_events(su) == before + 1
    app_conn.execute("ALTER TABLE app_orders ADD COLUMN note text")
    assert capture_current(su, "app_orders")


def capture_current(conn: Conn, table: str) -> bool:
    """Whether the table's capture function is what attach makes now."""
    return bool(scalar(conn, "SELECT p.prosrc = audit.capture_source(%s::regclass)"
                             " FROM pg_proc p WHERE p.proname = 'capture_' || %s::regclass::oid",
                       (table, table)))


# Types whose equality is equality of their JSON image, which statement
# capture compares as they are, each with an old and a new value; numeric,
# which it compares as text; and a few it compares as JSON.
COMPARED_TYPES = {
    "boolean": ("true", "false"), '"char"': ("'x'", "'y'"), "smallint": ("1", "2"),
    "integer": ("1", "2"), "bigint": ("9007199254740993", "9007199254740992"),
    "oid": ("1", "2"), "date": ("'2024-02-29'", "'2024-03-01'"),
    "timestamp": ("'2024-02-29 01:02:03.25'", "'2024-02-29 01:02:03.5'"),
    "timestamptz": ("'2024-02-29 01:02:03+00'", "'2024-02-29 01:02:03+01'"),
    "uuid": ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"),
    "name": ("'n'", "'N'"), "text": ("'t'", "'T'"), "varchar(5)": ("'v'", "'v '"),
    "small_domain": ("3", "4"), "numeric": ("1.0", "1.00"), "float8": ("0.5", "0.25"),
    "jsonb": ("""'{"a": 1}'""", """'{"a": 2}'"""), "int[]": ("'{1}'", "'{1,2}'"),
}


def test_update_names_exactly_the_changed_columns_of_every_type(su: Conn, capture: str) -> None:
    """Each column is compared on its own: a change of value (or of scale,
    or of case) is a change, NULL to NULL is none, and NULL to a value or
    back is one, for every type capture compares as it is and some it
    compares as JSON; several rows in one statement."""
    columns = [f"c{i}" for i in range(len(COMPARED_TYPES))]
    defs = ", ".join(f"{c} {t}" for c, t in zip(columns, COMPARED_TYPES))
    old = [v[0] for v in COMPARED_TYPES.values()]
    new = [v[1] for v in COMPARED_TYPES.values()]
    run(su, "CREATE DOMAIN small_domain AS int CHECK (VALUE < 10)",
        f"CREATE TABLE typed (id int PRIMARY KEY, {defs})",
        f"INSERT INTO typed VALUES (1, {', '.join(old)}), (2, {', '.join(old)}),"
        f" (3, {', '.join(['NULL'] * len(columns))}), (4, {', '.join(old)})")
    attach(su, "typed")
    if capture == "statement":
        source = scalar(su, "SELECT audit.capture_source('typed')")
        for i, column_type in enumerate(COMPARED_TYPES):
            as_is = f"p.o{i + 2} OPERATOR(pg_catalog.=) p.n{i + 2}" in source
            as_text = f"p.o{i + 2}::pg_catalog.text OPERATOR(pg_catalog.=) p.n{i + 2}::pg_catalog.text"
            assert as_is == (column_type not in ("numeric", "float8", "jsonb", "int[]")), column_type
            assert (as_text in source) == (column_type == "numeric"), column_type
    evens = ", ".join(f"{c} = {v}" for c, v in list(zip(columns, new))[::2])
    odds = ", ".join(f"{c} = NULL" for c in columns[1::2])
    su.execute(f"UPDATE typed SET {evens}, {odds} WHERE id IN (1, 3)")
    su.execute(f"UPDATE typed SET {', '.join(f'{c} = {c}' for c in columns)} WHERE id = 2")
    su.execute(f"UPDATE typed SET {', '.join(f'{c} = {v}' for c, v in zip(columns, new))}"
               " WHERE id = 4")
    stored = {e["entity_id"]: e["before"] for e in events(su, "public.typed", source="audit.events")}
    assert set(stored) == {"1", "3", "4"}
    assert set(stored["1"]) == set(columns)
    assert stored["3"] == {c: None for c in columns[::2]}
    assert set(stored["4"]) == set(columns)
    assert stored["4"]["c14"] == 1.0 and stored["4"]["c12"] == "v"


def test_update_under_a_nondeterministic_collation_is_a_change(su: Conn) -> None:
    """Text that a case-insensitive collation calls equal differs in the
    row: the change is recorded, with the old value."""
    try:
        with su.transaction():
            su.execute("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2',"
                       " deterministic = false)")
    except psycopg.errors.FeatureNotSupported:
        pytest.skip("this server was built without ICU")
    run(su, "CREATE TABLE ci_text (id int PRIMARY KEY, t text COLLATE ci)",
        "INSERT INTO ci_text VALUES (1, 'a'), (2, 'b')")
    attach(su, "ci_text")
    su.execute("UPDATE ci_text SET t = upper(t)")
    stored = events(su, "public.ci_text", source="audit.events")
    assert sorted((e["entity_id"], e["before"]) for e in stored) == [
        ("1", {"t": "a"}), ("2", {"t": "b"})]


def test_noop_update_records_nothing(su: Conn, orders: str) -> None:
    su.execute("UPDATE orders SET status = status, amount = amount")
    su.execute("UPDATE orders SET note = 'a' WHERE id = 1")
    assert events(su, orders) == []


def test_multi_row_update_records_changed_rows_only(su: Conn, orders: str) -> None:
    su.execute("INSERT INTO orders SELECT g, 'new', g, 'x' FROM generate_series(4, 9) g")
    before = len(events(su, orders))
    su.execute("UPDATE orders SET status = CASE WHEN id % 2 = 0 THEN 'even' ELSE status END")
    updated = events(su, orders)[before:]
    assert sorted(e["entity_id"] for e in updated) == ["2", "4", "6", "8"]
    for event in updated:
        assert event["action"] == "updated"
        assert event["before"]["id"] == event["after"]["id"] == int(event["entity_id"])
        assert event["after"]["status"] == "even"
        assert event["changed_columns"] == ["status"]


def test_key_change_sets_entity_id_and_previous_entity_id(su: Conn, orders: str) -> None:
    su.execute("UPDATE orders SET id = id + 100, note = 'moved' WHERE id IN (1, 3)")
    updated = events(su, orders)
    assert sorted((e["previous_entity_id"], e["entity_id"]) for e in updated) == [
        ("1", "101"), ("3", "103")]
    for event in updated:
        assert event["before"]["id"] == int(event["previous_entity_id"])
        assert event["after"]["id"] == int(event["entity_id"])
        assert event["after"]["note"] == "moved"
        assert event["changed_columns"] == ["id", "note"]


def test_key_swap_pairs_rows_correctly(su: Conn, orders: str) -> None:
    run(su, "ALTER TABLE orders DROP CONSTRAINT orders_pkey",
        "ALTER TABLE orders ADD PRIMARY KEY (id) DEFERRABLE INITIALLY DEFERRED")
    su.execute("UPDATE orders SET id = 3 - id WHERE id IN (1, 2)")
    pairs = {(e["previous_entity_id"], e["entity_id"], e["before"]["note"], e["after"]["note"])
             for e in events(su, orders)}
    assert pairs == {("1", "2", "a", "a"), ("2", "1", "b", "b")}


def test_truncate_records_every_row(su: Conn, orders: str) -> None:
    su.execute("TRUNCATE orders")
    truncated = events(su, orders)
    assert sorted(brief(truncated)) == [("truncated", "1"), ("truncated", "2"), ("truncated", "3")]
    notes = {e["entity_id"]: e["before"]["note"] for e in truncated}
    assert notes == {"1": "a", "2": "b", "3": "c"}
    assert all(e["after"] is None for e in truncated)
    assert scalar(su, "SELECT count(*) FROM orders") == 0


def test_truncate_of_empty_table_records_nothing(su: Conn, orders: str) -> None:
    su.execute("DELETE FROM orders")
    su.execute("TRUNCATE orders")
    assert [e["action"] for e in events(su, orders)] == ["deleted"] * 3


def test_composite_key_entity_id_is_json_array(su: Conn) -> None:
    run(su, "CREATE TABLE pairs (n int, k text, v int, PRIMARY KEY (n, k))")
    attach(su, "pairs")
    su.execute("INSERT INTO pairs VALUES (7, 'b', 1)")
    su.execute("UPDATE pairs SET k = 'c' WHERE n = 7")
    su.execute("DELETE FROM pairs")
    assert [(e["action"], e["entity_id"], e["previous_entity_id"])
            for e in events(su, "public.pairs")] == [
        ("created", '[7, "b"]', None),
        ("updated", '[7, "c"]', '[7, "b"]'),
        ("deleted", '[7, "c"]', None),
    ]


def test_explicit_id_columns_for_table_without_primary_key(su: Conn) -> None:
    run(su, "CREATE TABLE raw (source text NOT NULL, seq int NOT NULL, payload text,"
            " UNIQUE (seq, source))")
    attach(su, "raw", ["seq", "source"])
    run(su, "INSERT INTO raw VALUES ('s1', 5, 'p')", "UPDATE raw SET payload = 'q'",
        "TRUNCATE raw")
    assert brief(events(su, "public.raw")) == [
        ("created", '[5, "s1"]'), ("updated", '[5, "s1"]'), ("truncated", '[5, "s1"]')]
    source = scalar(su, "SELECT id_source FROM audit.tables WHERE relid = 'raw'::regclass")
    assert source == "explicit"


def test_single_explicit_id_column_is_plain_text(su: Conn) -> None:
    run(su, "CREATE TABLE codes (code text NOT NULL UNIQUE, label text)")
    attach(su, "codes", ["code"])
    su.execute("INSERT INTO codes VALUES ('EUR', 'euro')")
    assert brief(events(su, "public.codes")) == [("created", "EUR")]


@pytest.mark.parametrize("ddl", [
    pytest.param("CREATE TABLE ids (a int, b int, v text)", id="no unique index"),
    pytest.param("CREATE TABLE ids (a int NOT NULL, b int, v text, UNIQUE (a, b))",
                 id="a key column may be NULL"),
    pytest.param("CREATE TABLE ids (a int NOT NULL, b int NOT NULL, v text);"
                 " CREATE UNIQUE INDEX ON ids (a, b) WHERE v IS NOT NULL", id="partial index"),
    pytest.param("CREATE TABLE ids (a int NOT NULL, b int NOT NULL, v text, UNIQUE (a, v))",
                 id="unique over another column"),
])
def test_explicit_id_columns_must_identify_rows(su: Conn, ddl: str) -> None:
    """Id columns a unique index over NOT NULL columns does not back are
    refused, and nothing is attached; trusted explicitly, they are kept."""
    run(su, *ddl.split(";"))
    before = count_events(su)
    expect_error(su, "SELECT audit.attach('ids', ARRAY['a', 'b'])", sqlstate="42P16",
                 contains="not backed by a unique index over NOT NULL columns")
    assert triggers(su, "ids") == [] and count_events(su) == before
    assert scalar(su, "SELECT count(*) FROM audit.tables") == 0
    su.execute("SELECT audit.attach('ids', ARRAY['a', 'b'], p_trust_id_columns => true)")
    assert scalar(su, "SELECT id_trusted FROM audit.tables") is True
    [event] = events(su, "public.ids", actions=["attached"])
    assert event["after"]["id_trusted"] is True


def test_a_unique_index_over_some_id_columns_is_enough(su: Conn) -> None:
    run(su, "CREATE TABLE ids (a int NOT NULL UNIQUE, b int NOT NULL, v text)")
    su.execute("SELECT audit.attach('ids', ARRAY['a', 'b'])")
    assert scalar(su, "SELECT id_trusted FROM audit.tables") is False


def test_attach_again_keeps_explicit_id_columns(su: Conn) -> None:
    """Re-attaching names no columns: the recorded ones stay (and so does the
    trust they were given); an empty list means the primary key again."""
    run(su, "CREATE TABLE views (id int PRIMARY KEY, session text NOT NULL, seq int NOT NULL,"
            " UNIQUE (session, seq))")
    attach(su, "views", ["session", "seq"])
    attach(su, "views")
    su.execute("SELECT audit.attach('views', p_capture => 'statement')")
    assert scalar(su, "SELECT id_columns FROM audit.tables") == ["session", "seq"]
    su.execute("INSERT INTO views VALUES (1, 's', 1)")
    assert brief(events(su, "public.views")) == [("created", '["s", 1]')]
    su.execute("SELECT audit.attach('views', '{}')")
    assert scalar(su, "SELECT (id_columns, id_source)::text FROM audit.tables") == (
        '({id},"primary key")')
    su.execute("INSERT INTO views VALUES (2, 's', 2)")
    assert brief(events(su, "public.views"))[-1] == ("created", "2")


def test_table_without_primary_key_is_refused(su: Conn) -> None:
    run(su, "CREATE TABLE nokey (a int)")
    expect_error(su, "SELECT audit.attach('nokey')", sqlstate="42P16",
                 contains="has no primary key")
    assert triggers(su, "nokey") == []
    assert scalar(su, "SELECT count(*) FROM audit.tables") == 0


def test_unknown_id_column_is_refused(su: Conn) -> None:
    run(su, "CREATE TABLE nokey (a int)")
    expect_error(su, "SELECT audit.attach('nokey', ARRAY['b'])", sqlstate="42703")
    assert triggers(su, "nokey") == []


def test_attach_twice_keeps_one_set_of_triggers_and_one_event(
        su: Conn, orders: str, capture: str) -> None:
    attach(su, "orders")
    attach(su, "public.orders")
    assert triggers(su, "orders") == CAPTURE_TRIGGERS[capture]
    attached = events(su, orders, actions=["attached"])
    assert len(attached) == 1
    assert attached[0]["after"] == {"id_columns": ["id"], "id_source": "primary key",
                                    "capture": capture, "exclude": [], "redact": [],
                                    "on_change": {}, "require_actor": False}
    su.execute("INSERT INTO orders VALUES (4, 'new', 1, NULL)")
    assert brief(events(su, orders)) == [("created", "4")]


def test_detach_twice_and_detached_table_writes_nothing(su: Conn, orders: str) -> None:
    detach(su, "orders")
    detach(su, "orders")
    assert triggers(su, "orders") == []
    assert len(events(su, orders, actions=["detached"])) == 1
    assert scalar(su, "SELECT count(*) FROM audit.tables") == 0
    run(su, "INSERT INTO orders VALUES (4, 'new', 1, NULL)", "UPDATE orders SET note = 'x'",
        "DELETE FROM orders WHERE id = 1", "TRUNCATE orders")
    assert events(su, orders) == []


def test_detach_of_never_attached_table_does_nothing(su: Conn) -> None:
    run(su, "CREATE TABLE plain (id int PRIMARY KEY)")
    detach(su, "plain")
    assert events(su, actions=["detached"]) == []


def test_entity_type_is_schema_qualified_and_quoted(su: Conn) -> None:
    run(su, 'CREATE TABLE "Mixed Case" (id int PRIMARY KEY)', "CREATE SCHEMA s2",
        "CREATE TABLE s2.orders (id int PRIMARY KEY)")
    attach(su, '"Mixed Case"')
    attach(su, "s2.orders")
    run(su, 'INSERT INTO "Mixed Case" VALUES (1)', "INSERT INTO s2.orders VALUES (1)")
    assert [e["entity_type"] for e in events(su)] == ['public."Mixed Case"', "s2.orders"]


def test_entity_type_ignores_caller_search_path(su: Conn, orders: str) -> None:
    su.execute("SET search_path = public")
    su.execute("INSERT INTO orders VALUES (4, 'new', 1, NULL)")
    assert [e["entity_type"] for e in events(su)] == ["public.orders"]


@pytest.mark.parametrize("ddl, name", [
    ("CREATE VIEW v AS SELECT 1 AS id", "v"),
    ("CREATE MATERIALIZED VIEW v AS SELECT 1 AS id", "v"),
    ("CREATE SEQUENCE v", "v"),
])
def test_non_tables_are_refused(su: Conn, ddl: str, name: str) -> None:
    su.execute(ddl)
    expect_error(su, "SELECT audit.attach(%s::regclass)", (name,), sqlstate="42809",
                 contains="is not a table")


def test_partition_is_refused(su: Conn) -> None:
    run(su, "CREATE TABLE p (id int, k text, PRIMARY KEY (id, k)) PARTITION BY LIST (k)",
        "CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('a')")
    expect_error(su, "SELECT audit.attach('p_a')", sqlstate="42809", contains="is a partition of")
    assert triggers(su, "p_a") == []


def test_statement_capture_of_partitioned_table_is_refused(su: Conn) -> None:
    run(su, "CREATE TABLE p (id int PRIMARY KEY) PARTITION BY RANGE (id)",
        "CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM (0) TO (10)")
    expect_error(su, "SELECT audit.attach('p', NULL, 'statement')", sqlstate="0A000",
                 contains="can only be captured row by row")
    assert triggers(su, "p") == []
    assert scalar(su, "SELECT count(*) FROM audit.tables") == 0


def test_unknown_capture_mode_is_refused_and_changes_nothing(su: Conn, orders: str,
                                                             capture: str) -> None:
    expect_error(su, "SELECT audit.attach('orders', NULL, 'bulk')", sqlstate="22023",
                 contains="unknown capture mode")
    assert triggers(su, "orders") == CAPTURE_TRIGGERS[capture]


def test_changing_capture_mode_swaps_triggers_and_keeps_capturing(
        su: Conn, orders: str, capture: str) -> None:
    other = "row" if capture == "statement" else "statement"
    attach(su, "orders", capture=other)
    assert triggers(su, "orders") == CAPTURE_TRIGGERS[other]
    assert scalar(su, "SELECT capture FROM audit.tables WHERE relid = 'orders'::regclass") == other
    su.execute("SELECT audit.attach('orders')")  # no mode given: keeps the current one
    assert triggers(su, "orders") == CAPTURE_TRIGGERS[other]
    su.execute("UPDATE orders SET note = 'x' WHERE id = 1")
    assert brief(events(su, orders)) == [("updated", "1")]
    assert [e["after"]["capture"] for e in events(su, orders, actions=["attached"])] == [
        capture, other]


def test_temporary_and_audit_tables_are_refused(su: Conn) -> None:
    su.execute("CREATE TEMP TABLE tmp (id int PRIMARY KEY)")
    expect_error(su, "SELECT audit.attach('tmp')", sqlstate="42809", contains="temporary")
    expect_error(su, "SELECT audit.attach('audit.tables')", sqlstate="42809")


def test_insert_on_conflict_records_created_and_updated(su: Conn, orders: str) -> None:
    su.execute("INSERT INTO orders VALUES (1, 'paid', 10, 'a'), (2, 'new', 20, 'b'),"
               " (4, 'new', 1, 'd')"
               " ON CONFLICT (id) DO UPDATE SET status = excluded.status")
    assert sorted(brief(events(su, orders))) == [("created", "4"), ("updated", "1")]


def test_merge_records_each_action(pg: Server, su: Conn, orders: str) -> None:
    if pg.version_num < 150000:
        pytest.skip("MERGE needs PostgreSQL 15")
    su.execute("MERGE INTO orders o USING (VALUES (1, 'x'), (2, NULL), (5, 'e')) s(id, note)"
               " ON o.id = s.id"
               " WHEN MATCHED AND s.note IS NULL THEN DELETE"
               " WHEN MATCHED THEN UPDATE SET note = s.note"
               " WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'new', 0, s.note)")
    assert sorted(brief(events(su, orders))) == [
        ("created", "5"), ("deleted", "2"), ("updated", "1")]


def test_copy_records_created(su: Conn, orders: str) -> None:
    with su.cursor().copy("COPY orders FROM STDIN") as copy:
        copy.write_row((7, "new", 1, "copied"))
        copy.write_row((8, "new", 2, None))
    assert brief(events(su, orders)) == [("created", "7"), ("created", "8")]


def test_truncate_cascade_records_rows_of_the_referencing_table(su: Conn) -> None:
    run(su, "CREATE TABLE parent (id int PRIMARY KEY)",
        "CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES parent)",
        "INSERT INTO parent VALUES (1)", "INSERT INTO child VALUES (1, 1), (2, 1)")
    attach(su, "child")
    su.execute("TRUNCATE parent CASCADE")
    assert sorted(brief(events(su, "public.child"))) == [("truncated", "1"), ("truncated", "2")]


def test_awkward_names_are_quoted(su: Conn) -> None:
    table = '"we.ird"."ta""ble"'
    run(su, 'CREATE SCHEMA "we.ird"', 'GRANT USAGE ON SCHEMA "we.ird" TO PUBLIC',
        f'CREATE TABLE {table} ("Key ""x""" int PRIMARY KEY, v text)')
    attach(su, table)
    run(su, f"INSERT INTO {table} VALUES (1, 'a')", f'UPDATE {table} SET "Key ""x""" = 2',
        f"TRUNCATE {table}")
    recorded = events(su, table)
    assert [(e["action"], e["entity_id"], e["previous_entity_id"]) for e in recorded] == [
        ("created", "1", None), ("updated", "2", "1"), ("truncated", "2", None)]
    assert recorded[0]["after"] == {'Key "x"': 1, "v": "a"}


@pytest.mark.parametrize("kind", ["ordinary", "partitioned"])
def test_column_named_like_the_row_alias(su: Conn, kind: str) -> None:
    """A column named ``t`` must not replace the row image."""
    suffix = " PARTITION BY RANGE (id)" if kind == "partitioned" else ""
    su.execute(f"CREATE TABLE tee (id int PRIMARY KEY, t text){suffix}")
    if kind == "partitioned":
        su.execute("CREATE TABLE tee_1 PARTITION OF tee FOR VALUES FROM (0) TO (100)")
    attach(su, "tee", capture="row" if kind == "partitioned" else None)
    run(su, "INSERT INTO tee VALUES (1, 'hello')", "UPDATE tee SET t = 'bye'", "TRUNCATE tee")
    recorded = events(su, "public.tee")
    assert brief(recorded) == [("created", "1"), ("updated", "1"), ("truncated", "1")]
    assert recorded[0]["after"] == {"id": 1, "t": "hello"}
    assert recorded[1]["changed_columns"] == ["t"]
    assert recorded[2]["before"] == {"id": 1, "t": "bye"}


def test_columns_named_like_the_pairing_aliases(su: Conn) -> None:
    """Statement capture pairs rows in subqueries with outputs rn, r, o<n>,
    n<n>, oj, nj and same: columns so named must not take their place."""
    names = ["r", "rn", "p", "o2", "n2", "oj", "nj", "same", "auditsql_old"]
    su.execute(f"CREATE TABLE alias (id int PRIMARY KEY, {', '.join(f'{n} int' for n in names)})")
    attach(su, "alias")
    run(su, f"INSERT INTO alias VALUES (1, {', '.join('0' for _ in names)}),"
            f" (2, {', '.join('0' for _ in names)})",
        "UPDATE alias SET rn = 1, oj = 2, auditsql_old = 3 WHERE id = 1",
        "UPDATE alias SET id = id")
    recorded = events(su, "public.alias", source="audit.events")
    assert brief(recorded) == [("created", "1"), ("created", "2"), ("updated", "1")]
    assert recorded[2]["before"] == {"rn": 0, "oj": 0, "auditsql_old": 0}
    assert recorded[2]["after"] == {"id": 1, **dict.fromkeys(names, 0), "rn": 1, "oj": 2,
                                    "auditsql_old": 3}
    assert sorted(events(su, "public.alias")[2]["changed_columns"]) == ["auditsql_old", "oj", "rn"]


def test_statement_pairing_sorts_rows_not_images(su: Conn, orders: str, capture: str) -> None:
    """The join that pairs old and new rows sorts both sides, on disk for a
    large statement: its inputs carry the row, and the images are built
    after it (docs/performance.md)."""
    if capture != "statement":
        pytest.skip("row capture pairs nothing")
    source = scalar(su, "SELECT audit.capture_source('orders')")
    sides = re.findall(r"\(SELECT pg_catalog\.row_number\(\) OVER \(\) AS rn, (.*?)\s+FROM auditsql_(?:old|new)\)",
                       source, re.S)
    assert len(sides) == 6
    for side in sides:
        assert side.startswith("COALESCE(auditsql_")
        assert "to_jsonb" not in side


def test_statement_capture_compares_typed_columns_until_the_table_is_altered(
        su: Conn, orders: str, capture: str) -> None:
    """The column signature attach recorded matches the table's own until
    ALTER TABLE: until then no UPDATE takes the generic comparison
    (changed_values), and after it every changed row does."""
    if capture != "statement":
        pytest.skip("row capture asks each row's image")
    su.execute("SET track_functions = 'all'")
    calls = "SELECT coalesce(pg_stat_get_xact_function_calls('audit.changed_values'::regproc), 0)"

    def generic_comparisons() -> int:
        # Counts of a rolled-back transaction may linger until they are
        # flushed: count this UPDATE's only.
        with su.transaction(force_rollback=True):
            before = scalar(su, calls)
            su.execute("UPDATE orders SET status = 'paid'")
            return int(scalar(su, calls)) - int(before)

    assert generic_comparisons() == 0
    quiet_ddl(su, "ALTER TABLE orders ADD COLUMN extra int")
    assert generic_comparisons() == 3
    su.execute("SELECT audit.refresh('orders')")
    assert generic_comparisons() == 0


def test_replica_mode_does_not_silence_capture(su: Conn, orders: str) -> None:
    su.execute("SET session_replication_role = replica")
    run(su, "INSERT INTO orders VALUES (4, 'new', 1, NULL)",
        "UPDATE orders SET note = 'r' WHERE id = 4",
        "DELETE FROM orders WHERE id = 4", "TRUNCATE orders")
    assert [a for a, _ in brief(events(su, orders))] == (
        ["created", "updated", "deleted"] + ["truncated"] * 3)


def test_truncate_in_schema_without_public_usage(su: Conn) -> None:
    """TRUNCATE capture must work for tables outside ``public`` (plain CREATE SCHEMA)."""
    run(su, "CREATE SCHEMA sales", "CREATE TABLE sales.docs (id int PRIMARY KEY, body text)",
        "INSERT INTO sales.docs VALUES (1, 'x')")
    attach(su, "sales.docs")
    su.execute("TRUNCATE sales.docs")
    assert brief(events(su, "sales.docs")) == [("truncated", "1")]
    assert scalar(su, "SELECT count(*) FROM sales.docs") == 0


def test_truncate_of_table_with_row_level_security_records_every_row(
        su: Conn, app_conn: Conn) -> None:
    """Row-level security must not hide rows from TRUNCATE capture."""
    run(app_conn,
        "CREATE TABLE tenant_docs (id int PRIMARY KEY, tenant text DEFAULT current_user)",
        "ALTER TABLE tenant_docs ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY own ON tenant_docs USING (tenant = current_user)")
    attach(su, "tenant_docs")
    app_conn.execute("INSERT INTO tenant_docs (id) VALUES (1), (2)")
    app_conn.execute("TRUNCATE tenant_docs")
    assert sorted(brief(events(su, "public.tenant_docs", actions=["truncated"]))) == [
        ("truncated", "1"), ("truncated", "2")]


def test_capture_and_guard_in_an_awkwardly_named_schema(db: str) -> None:
    schema = "Audit 'Log' 100%s"
    with psycopg.connect(db) as conn:
        install(conn, Settings(schema=schema))
    with connect(db) as conn:
        audit = sql.Identifier(schema)
        run(conn, "CREATE TABLE t1 (id int PRIMARY KEY, v text)",
            sql.SQL("SELECT {}.attach('t1')").format(audit))
        with conn.transaction():
            conn.execute(sql.SQL("SELECT {}.set_actor('u-1')").format(audit))
            run(conn, "INSERT INTO t1 VALUES (1, 'a')", "UPDATE t1 SET v = 'b'", "TRUNCATE t1")
        query = sql.SQL("SELECT action, entity_id, actor_id FROM {}.events ORDER BY id")
        recorded = conn.execute(query.format(audit)).fetchall()
        assert [tuple(r.values()) for r in recorded] == [
            ("attached", None, None), ("created", "1", "u-1"), ("updated", "1", "u-1"),
            ("truncated", "1", "u-1")]
        expect_error(conn, sql.SQL("DELETE FROM {}.events").format(audit), contains="append-only")
        assert scalar(conn, "SELECT to_regclass('audit.events') IS NULL")


def test_member_of_operator_role_can_attach_its_table(su: Conn, app: AppRole,
                                                      app_conn: Conn) -> None:
    su.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(OPERATOR),
                                                sql.Identifier(app.name)))
    run(app_conn, "CREATE TABLE mine (id int PRIMARY KEY)", "SELECT audit.attach('mine')",
        "INSERT INTO mine VALUES (1)", "TRUNCATE mine", "SELECT audit.detach('mine')")
    assert brief(events(su, "public.mine", actions=["attached", *ROW_ACTIONS, "detached"])) == [
        ("attached", None), ("created", "1"), ("truncated", "1"), ("detached", None)]
    assert [e["db_user"] for e in events(su, "public.mine", actions=["attached"])] == [app.name]
    assert scalar(su, "SELECT has_table_privilege(%s, 'mine', 'SELECT')", (OWNER,)) is False
    assert scalar(su, "SELECT pg_has_role(%s, %s, 'MEMBER')", (app.name, OWNER)) is False


def owner_privileges(conn: Conn, tables: list[str], schemas: list[str]) -> dict[str, bool]:
    """Whether the owner role holds SELECT on each table and USAGE on each schema."""
    held = {t: scalar(conn, "SELECT has_table_privilege(%s, %s, 'SELECT')", (OWNER, t))
            for t in tables}
    held.update({s: scalar(conn, "SELECT has_schema_privilege(%s, %s, 'USAGE')", (OWNER, s))
                 for s in schemas})
    return held


PARTITIONED_TREE = [
    "CREATE SCHEMA sales", "CREATE SCHEMA archive",
    "CREATE TABLE sales.parts (id int PRIMARY KEY) PARTITION BY RANGE (id)",
    "CREATE TABLE sales.parts_1 PARTITION OF sales.parts FOR VALUES FROM (0) TO (100)",
    "CREATE TABLE archive.parts_2 PARTITION OF sales.parts FOR VALUES FROM (100) TO (200)",
]
TREE_TABLES = ["sales.parts", "sales.parts_1", "archive.parts_2"]


def test_attach_grants_select_on_partitions_and_usage_and_detach_revokes_them(
        su: Conn) -> None:
    """README: "`attach` grants the owner role SELECT on the table (and its
    partitions) and USAGE on their schemas, so that TRUNCATE can record the
    rows it removes; `detach` revokes exactly what `attach` granted." """
    run(su, *PARTITIONED_TREE)
    assert set(owner_privileges(su, TREE_TABLES, ["sales", "archive"]).values()) == {False}
    attach(su, "sales.parts", capture="row")
    assert owner_privileges(su, TREE_TABLES, ["sales", "archive"]) == dict.fromkeys(
        [*TREE_TABLES, "sales", "archive"], True)
    run(su, "INSERT INTO sales.parts VALUES (1), (150)", "TRUNCATE archive.parts_2",
        "TRUNCATE sales.parts")
    assert sorted(brief(events(su, "sales.parts", actions=["truncated"]))) == [
        ("truncated", "1"), ("truncated", "150")]
    detach(su, "sales.parts")
    assert owner_privileges(su, TREE_TABLES, ["sales", "archive"]) == dict.fromkeys(
        [*TREE_TABLES, "sales", "archive"], False)


def test_detach_keeps_select_and_usage_the_owner_role_held_before_attach(su: Conn) -> None:
    """README: "`detach` revokes exactly what `attach` granted": SELECT and
    USAGE the owner role held before attach survive detach."""
    run(su, "CREATE SCHEMA kept", "CREATE TABLE kept.docs (id int PRIMARY KEY)",
        sql.SQL("GRANT USAGE ON SCHEMA kept TO {}").format(sql.Identifier(OWNER)),
        sql.SQL("GRANT SELECT ON kept.docs TO {}").format(sql.Identifier(OWNER)))
    attach(su, "kept.docs")
    detach(su, "kept.docs")
    assert owner_privileges(su, ["kept.docs"], ["kept"]) == {"kept.docs": True, "kept": True}


def test_detach_keeps_what_was_held_before_when_attach_granted_the_rest(su: Conn) -> None:
    """README: "`detach` revokes exactly what `attach` granted": the owner
    role held SELECT on the partitioned table and USAGE on its schema before
    attach, which granted only SELECT on the partitions and USAGE on the
    other schema; detach takes back those and keeps the rest."""
    run(su, *PARTITIONED_TREE,
        sql.SQL("GRANT USAGE ON SCHEMA sales TO {}").format(sql.Identifier(OWNER)),
        sql.SQL("GRANT SELECT ON sales.parts TO {}").format(sql.Identifier(OWNER)))
    attach(su, "sales.parts", capture="row")
    detach(su, "sales.parts")
    assert owner_privileges(su, TREE_TABLES, ["sales", "archive"]) == {
        "sales.parts": True, "sales.parts_1": False, "archive.parts_2": False,
        "sales": True, "archive": False}


def test_detach_leaves_usage_another_attached_table_needs(su: Conn) -> None:
    """README: attach grants "USAGE on their schemas, so that TRUNCATE can
    record the rows it removes": detaching one table of a schema must not
    take USAGE from under another table of it that is still attached."""
    run(su, "CREATE SCHEMA shop", "CREATE TABLE shop.a (id int PRIMARY KEY)",
        "CREATE TABLE shop.b (id int PRIMARY KEY)", "INSERT INTO shop.b VALUES (1)")
    attach(su, "shop.a")
    attach(su, "shop.b")
    detach(su, "shop.a")
    assert owner_privileges(su, ["shop.b"], ["shop"]) == {"shop.b": True, "shop": True}
    su.execute("TRUNCATE shop.b")
    assert brief(events(su, "shop.b")) == [("truncated", "1")]


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_truncate_outside_read_committed_is_refused(
        su: Conn, orders: str, isolation: str) -> None:
    """A snapshot older than the TRUNCATE would miss rows committed since."""
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="READ COMMITTED"):
        with su.transaction():
            su.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
            su.execute(f"TRUNCATE {orders}")
    assert scalar(su, f"SELECT count(*) FROM {orders}") == 3
    assert events(su, orders) == []


# Column types whose text in a row image depends on a row-image setting, alone
# or nested: capture must pin the settings for each (value, expected image).
SETTING_DEPENDENT_TYPES = [
    pytest.param("float8", "0.1::float8 + 0.2::float8", 0.30000000000000004, id="float8"),
    pytest.param("float4", "0.1::float4", 0.1, id="float4"),
    pytest.param("interval", "'-1 days -02:03:04'", "-1 days -02:03:04", id="interval"),
    pytest.param("bytea", r"'\x00ff'", r"\x00ff", id="bytea"),
    pytest.param("point", "point(0.1::float8 + 0.2::float8, 1)", "(0.30000000000000004,1)",
                 id="point"),
    pytest.param("float8[]", "ARRAY[0.1::float8 + 0.2::float8]", [0.30000000000000004],
                 id="array of float8"),
    pytest.param("float_domain", "0.1::float8 + 0.2::float8", 0.30000000000000004,
                 id="domain over float8"),
    pytest.param("pair", "ROW(1, '-1 days -02:03:04')::pair",
                 {"n": 1, "i": "-1 days -02:03:04"}, id="row type holding an interval"),
    pytest.param("floatrange", "floatrange(0.1::float8 + 0.2::float8, 1)",
                 "[0.30000000000000004,1)", id="range over float8"),
]


@pytest.mark.parametrize("column_type, value, image", SETTING_DEPENDENT_TYPES)
def test_setting_dependent_types_are_pinned_alone(
        su: Conn, column_type: str, value: str, image: object) -> None:
    """The pin is generated only for tables with a type that needs it; each
    such type, alone in its table, still gets it."""
    run(su, "CREATE DOMAIN float_domain AS float8",
        "CREATE TYPE pair AS (n int, i interval)",
        "CREATE TYPE floatrange AS RANGE (subtype = float8)",
        f"CREATE TABLE dep (id int PRIMARY KEY, v {column_type})")
    attach(su, "dep")
    with su.transaction():
        run(su, "SET LOCAL bytea_output = escape", "SET LOCAL extra_float_digits = -15",
            "SET LOCAL IntervalStyle = sql_standard",
            f"INSERT INTO dep VALUES (1, {value})")
    assert events(su, "public.dep")[0]["after"] == {"id": 1, "v": image}


# The types capture_source treats as independent of the row-image settings,
# each with a sample value.
SETTING_FREE_VALUES = {
    "boolean": "true", '"char"': "'x'", "name": "'n'", "bigint": "-9007199254740993",
    "smallint": "-2", "integer": "7", "text": "'t'", "oid": "26",
    "json": """'{"a": 1.10}'""", "xml": "'<a>1</a>'", "cidr": "'10.0.0.0/8'",
    "macaddr8": "'08:00:2b:01:02:03:04:05'", "macaddr": "'08:00:2b:01:02:03'",
    "inet": "'::1'", "character": "'ab'", "character varying": "'v'",
    "date": "'2024-02-29'", "time without time zone": "'01:02:03.5'",
    "timestamp without time zone": "'2024-02-29 01:02:03.25'",
    "timestamp with time zone": "'2024-02-29 01:02:03.25+00'",
    "time with time zone": "'01:02:03+05'", "bit": "B'1'", "bit varying": "B'101'",
    "numeric": "0.30000000000000004000", "uuid": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
    "jsonb": """'{"a": 0.1}'""",
}


def type_lists() -> Any:
    """The named type lists of sql/fragments/type_lists.sql."""
    return render._environment().get_template("fragments/type_lists.sql").module


def test_type_lists_name_their_oids(su: Conn) -> None:
    """Each type the lists name is the built-in type of the oid they render
    for it, and each list renders the oids of its names."""
    lists = type_lists()
    oids = scalar(su, "SELECT jsonb_object_agg(format_type(t, NULL), t::int)"
                      " FROM unnest(%s::oid[]) AS t", (list(lists.builtin_type_oids.values()),))
    assert oids == lists.builtin_type_oids
    names = {oid: name for name, oid in oids.items()}
    for listed in ("json_types", "jsonb_comparable_types", "setting_free_types", "typed_types",
                   "typed_collated_types", "typed_text_types"):
        types = getattr(lists, listed)
        oids = scalar(su, f"SELECT {lists.type_oids(types)}::oid[]::int[]")
        assert sorted(names[oid] for oid in oids) == sorted(types), listed


def test_setting_free_types_need_no_pin(su: Conn) -> None:
    """Every type capture_source lists as independent of the row-image
    settings images the same under other settings, and a table of only such
    types (and enums, and arrays of them) gets no pin in its code."""
    assert sorted(type_lists().setting_free_types) == sorted(SETTING_FREE_VALUES)
    query = "SELECT ARRAY[" + ", ".join(
        f"to_jsonb({value}::{name})::text" for name, value in SETTING_FREE_VALUES.items()) + "]"
    plain = scalar(su, query)
    with su.transaction():
        run(su, "SET LOCAL bytea_output = escape", "SET LOCAL extra_float_digits = -15",
            "SET LOCAL IntervalStyle = sql_standard")
        assert scalar(su, query) == plain
    columns = ", ".join(f"c{i} {name}" for i, name in enumerate(SETTING_FREE_VALUES))
    run(su, "CREATE TYPE mood AS ENUM ('calm')",
        f"CREATE TABLE free (id int PRIMARY KEY, {columns}, m mood, a int[], d text[])")
    attach(su, "free")
    assert "extra_float_digits" not in scalar(
        su, "SELECT prosrc FROM pg_proc WHERE proname = 'capture_' || 'free'::regclass::oid")


def test_capture_without_setting_dependent_types_has_no_pin_statement(su: Conn) -> None:
    """The row-image settings are pinned and put back by statements that only
    a table with a column whose image depends on them gets: for the others
    the body holds neither (each statement costs every transaction)."""
    run(su, "CREATE TABLE plain_types (id int PRIMARY KEY, t text, d date)",
        "CREATE TABLE float_types (id int PRIMARY KEY, f float8)")
    attach(su, "plain_types")
    attach(su, "float_types")
    source = "SELECT prosrc FROM pg_proc WHERE proname = 'capture_' || %s::regclass::oid"
    plain = scalar(su, source, ("plain_types",))
    assert "pin_image_settings" not in plain and "restore_image_settings" not in plain
    floats = scalar(su, source, ("float_types",))
    assert "pin_image_settings" in floats and "restore_image_settings" in floats


def test_row_capture_asks_for_update_before_anything_else(su: Conn, orders: str,
                                                        capture: str) -> None:
    """Each condition of the body is compiled once per transaction: row
    capture tests TG_OP for UPDATE first, so that an OLTP update pays one
    test, and reads the context only for what it records (TRUNCATE is
    capture_truncate's)."""
    if capture != "row":
        pytest.skip("statement capture tests TG_OP once per statement")
    source = scalar(su, "SELECT prosrc FROM pg_proc WHERE proname = 'capture_' || 'orders'::regclass::oid")
    body = source[source.index("BEGIN"):]
    tests = re.findall(r"TG_OP OPERATOR\(pg_catalog\.=\) '(\w+)'", body)
    assert tests == ["UPDATE", "TRUNCATE", "INSERT"]
    assert body.index("IF v_context") > body.index("'UPDATE'")
    assert "v_context" not in body[body.index("'TRUNCATE'"):body.index("RETURN NULL")]


def test_admin_is_decided_on_the_actor_role_as_stored(su: Conn, orders: str) -> None:
    """Capture reads the actor role as every other path does: a role set
    directly, longer than 1024 characters, is stored cut, and whether the
    actor is an admin is asked of that stored role, by capture, TRUNCATE
    and log_event alike, even when the uncut role is an admin role."""
    role = "r" * 1100
    su.execute("SELECT audit.configure(ARRAY['admin', %s], NULL)", (role,))
    with su.transaction():
        su.execute("SELECT set_config('auditsql.actor_role', %s, true)", (role,))
        run(su, "UPDATE orders SET status = 'paid' WHERE id = 1",
            "SELECT audit.log_event('login')", "TRUNCATE orders")
    recorded = events(su, actions=["updated", "login", "truncated"])
    assert sorted({e["action"] for e in recorded}) == ["login", "truncated", "updated"]
    for event in recorded:
        assert event["actor_role"] == "r" * 1023 + "…", event["action"]
        assert event["admin"] is False, event["action"]


def test_session_settings_do_not_change_row_images(su: Conn) -> None:
    """Capture pins the settings that shape a value's text in the image."""
    run(su, "CREATE TABLE shapes (id int PRIMARY KEY, b bytea, f float8, i interval)")
    attach(su, "shapes")
    with su.transaction():
        run(su, "SET LOCAL bytea_output = escape", "SET LOCAL extra_float_digits = 0",
            "SET LOCAL IntervalStyle = sql_standard",
            "INSERT INTO shapes VALUES (1, '\\x00ff', 0.1::float8 + 0.2::float8,"
            " '-1 days -02:03:04')")
    after = events(su, "public.shapes")[0]["after"]
    assert after == {"id": 1, "b": "\\x00ff", "f": 0.30000000000000004,
                     "i": "-1 days -02:03:04"}


@pytest.mark.parametrize("capture, partitioned", [("row", False), ("statement", False),
                                                  ("row", True)])
def test_events_follow_a_renamed_table_and_schema(su: Conn, capture: str,
                                                  partitioned: bool) -> None:
    """The capture function holds the table's name where the event triggers
    refresh it: renaming the table, or its schema, refreshes it."""
    run(su, "CREATE SCHEMA shop")
    if partitioned:
        run(su, "CREATE TABLE shop.items (id int PRIMARY KEY) PARTITION BY RANGE (id)",
            "CREATE TABLE shop.items_1 PARTITION OF shop.items FOR VALUES FROM (0) TO (100)")
    else:
        run(su, "CREATE TABLE shop.items (id int PRIMARY KEY)")
    attach(su, "shop.items", capture=capture)
    run(su, "INSERT INTO shop.items VALUES (1)",
        "ALTER TABLE shop.items RENAME TO goods",
        "INSERT INTO shop.goods VALUES (2)",
        "ALTER SCHEMA shop RENAME TO store",
        "INSERT INTO store.goods VALUES (3)")
    assert [(e["entity_type"], e["entity_id"]) for e in events(su, None, ["created"])] == [
        ("shop.items", "1"), ("shop.goods", "2"), ("store.goods", "3")]
