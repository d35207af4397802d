"""A legal hold holds something: entity ids are read as the log spells them
(normalize_entity_id), holds store that spelling, releases accept any
spelling of it, and a hold matching no event is refused unless it is meant
for future events."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tests.sql.sqltools import Conn, attach, column, expect_error, run, scalar
from .test_retention import add_events, apply, system_events

HYPOTHESIS = settings(max_examples=60, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])
ITEMS = "public.order_items"


def normalize(conn: Conn, entity_type: str | None, entity_id: str | None) -> Any:
    return scalar(conn, "SELECT audit.normalize_entity_id(%s, %s)", (entity_type, entity_id))


def logged(conn: Conn, entity_type: str) -> list[str]:
    """entity_id of the data events of *entity_type*, oldest first."""
    return column(conn, "SELECT entity_id FROM audit.events WHERE entity_type = %s"
                        " AND category = 'data' ORDER BY id", (entity_type,))


def hold(conn: Conn, entity_type: str, entity_id: str, future: bool = False) -> bool:
    return bool(scalar(conn, "SELECT audit.place_hold(%s, %s, 'case 12', %s)",
                       (entity_type, entity_id, future)))


def holds(conn: Conn) -> list[tuple[str, str]]:
    return [(r["entity_type"], r["entity_id"]) for r in conn.execute(
        "SELECT entity_type, entity_id FROM audit.legal_holds ORDER BY 1, 2").fetchall()]


def nothing_changed(conn: Conn) -> tuple[Any, ...]:
    return (holds(conn), scalar(conn, "SELECT count(*) FROM audit.events"))


# --------------------------------------------------------------------------
# Composite keys
# --------------------------------------------------------------------------


def order_items(conn: Conn) -> None:
    run(conn, "CREATE TABLE order_items (order_id int, line int, note text,"
              " PRIMARY KEY (order_id, line))")
    attach(conn, ITEMS)
    run(conn, "INSERT INTO order_items VALUES (1001, 1, 'a'), (1001, 2, 'b')",
        "UPDATE order_items SET note = 'c' WHERE line = 1")


def test_a_composite_key_is_held_however_it_is_spaced(su: Conn) -> None:
    order_items(su)
    assert logged(su, ITEMS) == ["[1001, 1]", "[1001, 2]", "[1001, 1]"]
    for spelling in ("[1001,1]", "[1001, 1]", " [ 1001 ,\n1 ] ", '["1001", "1"]', '[" 1001", 1]'):
        assert normalize(su, ITEMS, spelling) == "[1001, 1]", spelling
    assert hold(su, ITEMS, "[1001,1]") is True
    assert holds(su) == [(ITEMS, "[1001, 1]")]
    assert hold(su, ITEMS, '["1001", 1]') is False  # the same entity, already held
    [placed] = system_events(su, "legal_hold_placed")
    assert (placed["entity_id"], placed["after"]["events"]) == ("[1001, 1]", 2)


def test_a_composite_hold_keeps_its_events_through_retention(su: Conn) -> None:
    order_items(su)
    run(su, "SELECT audit.set_retention('saas')", "SELECT audit.ensure_partitions('2015-03-01', 1)")
    add_events(su, ["2015-03-02", "2015-03-03"], entity_type=ITEMS, entity_id="[1001, 1]")
    add_events(su, ["2015-03-04"], entity_type=ITEMS, entity_id="[1001, 2]")
    hold(su, ITEMS, "[1001,1]")
    assert [(r["partition"], r["rows_removed"], r["rows_kept"]) for r in apply(su)] == [
        ("events_2015_03", 1, 2)]


def test_release_takes_any_spelling(su: Conn) -> None:
    order_items(su)
    hold(su, ITEMS, "[1001, 1]")
    su.execute("SELECT audit.release_hold(%s, %s, 'settled')", (ITEMS, "[1001,1]"))
    assert holds(su) == []
    [released] = system_events(su, "legal_hold_released")
    assert released["entity_id"] == "[1001, 1]"
    expect_error(su, "SELECT audit.release_hold(%s, '[1001,1]')", (ITEMS,), sqlstate="42704",
                 contains="[1001, 1] is not under legal hold")
    # A hold inserted by hand keeps the spelling it was given, and that
    # spelling releases it.
    su.execute("INSERT INTO audit.legal_holds (entity_type, entity_id, reason)"
               " VALUES (%s, '[1001,2]', 'by hand')", (ITEMS,))
    su.execute("SELECT audit.release_hold(%s, '[1001,2]')", (ITEMS,))
    assert holds(su) == []


def test_key_elements_are_read_as_their_columns_types(su: Conn) -> None:
    run(su, "CREATE TABLE mixed (region text, seq bigint, at date, PRIMARY KEY (region, seq, at))")
    attach(su, "public.mixed")
    run(su, "INSERT INTO mixed VALUES ('7', 42, '2026-01-31')")
    [written] = logged(su, "public.mixed")
    assert written == '["7", 42, "2026-01-31"]'
    for spelling in ('[7, "42", "2026-01-31"]', '["7",42,"2026-01-31"]', '[7, "+42", "20260131"]'):
        assert normalize(su, "public.mixed", spelling) == written, spelling
    hold(su, "public.mixed", '[7, "42", "2026-01-31"]')
    assert holds(su) == [("public.mixed", written)]


# --------------------------------------------------------------------------
# One key column
# --------------------------------------------------------------------------


def test_a_timestamp_key(su: Conn) -> None:
    su.execute("SET TimeZone = 'UTC'")
    run(su, "CREATE TABLE slots (at timestamptz PRIMARY KEY, local timestamp)",
        "CREATE TABLE ticks (at timestamp PRIMARY KEY)")
    attach(su, "public.slots")
    attach(su, "public.ticks")
    run(su, "INSERT INTO slots VALUES ('2026-01-01 00:00:00+00')",
        "INSERT INTO ticks VALUES ('2026-01-01 08:30')")
    assert logged(su, "public.slots") == ["2026-01-01T00:00:00+00:00"]
    for spelling in ("2026-01-01 00:00:00+00", "2026-01-01", "2026-01-01T01:00:00+01:00",
                     "Jan 1 2026 00:00 UTC"):
        assert normalize(su, "public.slots", spelling) == "2026-01-01T00:00:00+00:00", spelling
    assert normalize(su, "public.ticks", "2026-01-01 08:30") == "2026-01-01T08:30:00"
    assert hold(su, "public.slots", "2026-01-01 00:00:00+00") is True
    assert holds(su) == [("public.slots", "2026-01-01T00:00:00+00:00")]


def test_an_id_spelled_as_the_log_spells_it_is_kept(su: Conn) -> None:
    # Capture writes a timestamptz key in the writer's time zone: the id
    # copied from the log holds even when read in another zone.
    run(su, "CREATE TABLE slots (at timestamptz PRIMARY KEY)")
    attach(su, "public.slots")
    su.execute("SET TimeZone = 'Europe/Paris'")
    su.execute("INSERT INTO slots VALUES ('2026-01-01 00:00:00+00')")
    [written] = logged(su, "public.slots")
    assert written == "2026-01-01T01:00:00+01:00"
    su.execute("SET TimeZone = 'UTC'")
    assert normalize(su, "public.slots", written) == written
    assert hold(su, "public.slots", written) is True


def test_a_uuid_key(su: Conn) -> None:
    run(su, "CREATE TABLE docs (id uuid PRIMARY KEY)",
        "INSERT INTO docs VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')")
    attach(su, "public.docs")
    su.execute("UPDATE docs SET id = id")  # no change, no event
    su.execute("DELETE FROM docs")
    for spelling in ("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
                     "a0eebc999c0b4ef8bb6d6bb9bd380a11"):
        assert normalize(su, "public.docs", spelling) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert hold(su, "public.docs", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") is True
    assert holds(su) == [("public.docs", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]


def test_a_text_key_that_looks_like_json_is_kept_as_it_is(su: Conn) -> None:
    run(su, "CREATE TABLE tags (k text PRIMARY KEY)")
    attach(su, "public.tags")
    values = ["[1,2]", "[1, 2]", '{"a":1}', " 7", "7", "null", '"x"']
    su.execute("INSERT INTO tags SELECT unnest(%s::text[])", (values,))
    assert logged(su, "public.tags") == values
    for value in values:
        assert normalize(su, "public.tags", value) == value
    hold(su, "public.tags", "[1,2]")
    assert holds(su) == [("public.tags", "[1,2]")]


def test_an_integer_and_a_numeric_key(su: Conn) -> None:
    run(su, "CREATE TABLE ints (id int PRIMARY KEY)",
        "CREATE TABLE prices (amount numeric(10,2), code varchar(3), PRIMARY KEY (amount, code))")
    attach(su, "public.ints")
    attach(su, "public.prices")
    run(su, "INSERT INTO ints VALUES (7)", "INSERT INTO prices VALUES (1.5, 'ab')")
    assert normalize(su, "public.ints", " 7 ") == "7"
    assert normalize(su, "public.ints", "+7") == "7"
    assert logged(su, "public.prices") == ['[1.50, "ab"]']
    assert normalize(su, "public.prices", '[1.5, "ab"]') == '[1.50, "ab"]'
    # Never rounded nor cut to fit: 1.505 is not 1.51, 'abcd' not 'abc'.
    assert normalize(su, "public.prices", '[1.505, "ab"]') == '[1.505, "ab"]'
    assert normalize(su, "public.prices", '[1.5, "abcd"]') == '[1.5, "abcd"]'


def test_a_domain_key_is_read_without_running_its_check(su: Conn) -> None:
    run(su, "CREATE TABLE canary (x int)",
        "CREATE FUNCTION spy(int) RETURNS boolean LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO canary VALUES ($1); RETURN true; END$$",
        "CREATE DOMAIN code AS int CHECK (spy(VALUE))",
        "CREATE TABLE coded (id code PRIMARY KEY)")
    attach(su, "public.coded")
    su.execute("INSERT INTO coded VALUES (7)")
    seen = scalar(su, "SELECT count(*) FROM canary")
    assert normalize(su, "public.coded", " 7") == "7"
    assert scalar(su, "SELECT count(*) FROM canary") == seen


# --------------------------------------------------------------------------
# Entity types that are not (or no longer) audited tables
# --------------------------------------------------------------------------


def test_a_dropped_tables_entity_type(su: Conn) -> None:
    order_items(su)
    run(su, f"SELECT audit.detach('{ITEMS}')", "DROP TABLE order_items")
    assert normalize(su, ITEMS, "[1001,1]") == "[1001, 1]"  # through jsonb
    assert hold(su, ITEMS, "[1001,1]") is True
    assert holds(su) == [(ITEMS, "[1001, 1]")]


def test_application_entity_types(su: Conn) -> None:
    run(su, "SELECT audit.log_event('login', 'user', '42', '{}')",
        "SELECT audit.log_event('exported', 'report', '[7,\"q1\"]', '{}')")
    assert normalize(su, "user", "42") == "42"
    assert normalize(su, "user", " 42") == " 42"  # not a table: nothing to read it as
    # The application's own spelling is in the log: it is kept.
    assert normalize(su, "report", '[7,"q1"]') == '[7,"q1"]'
    assert normalize(su, "report", '[8,"q1"]') == '[8, "q1"]'
    assert hold(su, "user", "42") is True
    assert hold(su, "report", '[7,"q1"]') is True
    assert holds(su) == [("report", '[7,"q1"]'), ("user", "42")]


# --------------------------------------------------------------------------
# A hold must hold something
# --------------------------------------------------------------------------


def test_a_hold_matching_no_event_is_refused(su: Conn) -> None:
    order_items(su)
    before = nothing_changed(su)
    for spelling in ("[1001,3]", "[1001]", "1001", "[1001, 1, 1]", "{1001,1}"):
        expect_error(su, "SELECT audit.place_hold(%s, %s, 'x')", (ITEMS, spelling),
                     sqlstate="P0002", contains="would hold nothing")
        assert nothing_changed(su) == before, spelling
    error = expect_error(su, "SELECT audit.place_hold(%s, '[1001,3]', 'x')", (ITEMS,),
                         sqlstate="P0002")
    assert "'[1001, 3]'" in str(error) and "p_future" in str(error)


def test_a_hold_for_future_events_is_said_so(su: Conn) -> None:
    order_items(su)
    assert hold(su, ITEMS, "[1002,1]", future=True) is True
    assert holds(su) == [(ITEMS, "[1002, 1]")]
    [placed] = system_events(su, "legal_hold_placed")
    assert placed["after"]["events"] == 0
    su.execute("INSERT INTO order_items VALUES (1002, 1, 'later')")
    assert logged(su, ITEMS)[-1] == "[1002, 1]"  # the hold holds it
    # The records of a hold are not events to hold: released and placed
    # again, the id still needs events of its own.
    assert hold(su, ITEMS, "[1003,1]", future=True)
    su.execute("SELECT audit.release_hold(%s, '[1003,1]')", (ITEMS,))
    expect_error(su, "SELECT audit.place_hold(%s, '[1003,1]', 'x')", (ITEMS,), sqlstate="P0002")
    assert hold(su, ITEMS, "[1003,1]", future=True)
    assert [e["after"]["events"] for e in system_events(su, "legal_hold_placed")] == [0, 0, 0]


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

KEY_TYPES = ["public.order_items", "public.slots", "public.docs", "user", "public.nosuch", ""]


def fixtures_for_properties(conn: Conn) -> None:
    order_items(conn)
    run(conn, "CREATE TABLE slots (at timestamptz PRIMARY KEY)",
        "CREATE TABLE docs (id uuid PRIMARY KEY)")
    attach(conn, "public.slots")
    attach(conn, "public.docs")
    conn.execute("SELECT audit.log_event('login', 'user', '42', '{}')")


# Any text a client can send: no NUL, no lone surrogate (not UTF-8).
@given(st.sampled_from(KEY_TYPES),
       st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
               max_size=40))
@HYPOTHESIS
def test_unusual_input_never_raises_and_normalizing_twice_changes_nothing(
        su: Conn, entity_type: str, entity_id: str) -> None:
    if not scalar(su, "SELECT count(*) FROM audit.tables"):
        fixtures_for_properties(su)
    once = normalize(su, entity_type, entity_id)
    assert isinstance(once, str)
    assert normalize(su, entity_type, once) == once


@given(st.lists(st.tuples(st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1)),
                min_size=1, max_size=5, unique=True),
       st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", ":")]), st.booleans())
@HYPOTHESIS
def test_any_spelling_of_a_logged_key_finds_it(su: Conn, keys: list[tuple[int, int]],
                                               separators: tuple[str, str],
                                               as_strings: bool) -> None:
    with su.transaction(force_rollback=True):
        run(su, "CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b))")
        attach(su, "public.pairs")
        su.execute("INSERT INTO pairs SELECT * FROM unnest(%s::int[], %s::int[])",
                   ([a for a, _ in keys], [b for _, b in keys]))
        for (a, b), written in zip(keys, logged(su, "public.pairs")):
            given_key = [str(a), str(b)] if as_strings else [a, b]
            spelled = json.dumps(given_key, separators=separators)
            assert normalize(su, "public.pairs", spelled) == written


def test_null_in_null_out(su: Conn) -> None:
    assert normalize(su, ITEMS, None) is None
    assert normalize(su, None, "[1,2]") == "[1, 2]"


NAMES = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
                min_size=1, max_size=20).filter(
    lambda s: not s.startswith("pg_") and s not in ("public", "audit", "information_schema"))


@given(NAMES, NAMES)
@HYPOTHESIS
def test_a_table_of_any_name_is_found_by_its_entity_type(su: Conn, schema: str, table: str) -> None:
    """The table is looked up by the name its entity type spells (through
    the catalog's index): quotes, dots, capitals and keywords in the name
    find it, and the same name spelled any other way finds nothing."""
    with su.transaction(force_rollback=True):
        name = sql.Identifier(schema, table)
        run(su, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)),
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(name),
            sql.SQL("SELECT audit.attach({}::regclass)").format(sql.Literal(name.as_string(su))),
            sql.SQL("INSERT INTO {} VALUES (7)").format(name))
        entity_type = scalar(su, "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class AS c"
                                 " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                                 " WHERE c.oid = %s::regclass", (name.as_string(su),))
        # Found, '007' is read as the integer key it spells.
        assert normalize(su, entity_type, "007") == "7"
        for other in {f"{schema}.{table}", f'"{schema}"."{table}"', entity_type.upper(),
                      f" {entity_type}"} - {entity_type}:
            assert normalize(su, other, "007") == "007"
