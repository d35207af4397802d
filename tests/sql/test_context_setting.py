"""The context in one setting: the helpers store it whole in
auditsql.context, every event reads it there when it is set, and the six
settings only when it is not (docs/sql.md, "How the context is read")."""

from __future__ import annotations

import ipaddress

import psycopg
import pytest

from auditsql.installer import install
from auditsql.render import Settings
from tests.sql.sqltools import Conn, attach, connect, events, run, scalar

from .test_context import latin1_db  # noqa: F401  (the fixture)

@pytest.fixture(params=["row", "statement"])
def notes(su: Conn, request: pytest.FixtureRequest) -> str:
    run(su, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    attach(su, "notes", capture=request.param)
    return "public.notes"


def write(conn: Conn, body: str) -> None:
    run(conn, f"INSERT INTO notes VALUES ((SELECT coalesce(max(id), 0) + 1 FROM notes), '{body}')")


def actors(conn: Conn, table: str) -> list[tuple[str, str | None]]:
    return [(e["after"]["body"], e["actor_id"]) for e in events(conn, table)]


def test_set_context_stores_the_whole_context_in_one_setting(su: Conn, notes: str) -> None:
    with su.transaction():
        run(su, "SELECT audit.set_context('u-1', 'u1@example.com', 'member', '203.0.113.9',"
                " repeat('x', 2000), '')")
        stored = scalar(su, "SELECT current_setting('auditsql.context')")
        # One cast gives every field, validated, blank as NULL and cut.
        row = su.execute("SELECT (c).* FROM (SELECT %s::audit.context AS c) AS s",
                         (stored,)).fetchone()
        assert row is not None
        assert dict(row) == {
            "actor_id": "u-1", "actor_email": "u1@example.com", "actor_role": "member",
            "ip_address": ipaddress.ip_address("203.0.113.9"), "ip_address_raw": None,
            "user_agent": "x" * 1023 + "\u2026", "request_id": None,
            "application_name": scalar(su, "SHOW application_name")}
        write(su, "one")
    [event] = events(su, notes)
    assert event["user_agent"] == row["user_agent"]
    assert [event[f] for f in ("actor_id", "actor_email", "actor_role", "request_id")] == [
        "u-1", "u1@example.com", "member", None]


def test_mixing_the_setting_and_set_config_in_one_transaction(su: Conn, notes: str) -> None:
    """set_config alone is read; once a helper ran, what it stored wins over
    a later set_config until a helper runs again or the setting is cleared;
    a set_config before a helper counts."""
    with su.transaction():
        run(su, "SELECT set_config('auditsql.actor_id', 'raw-1', true)")
        write(su, "raw only")
        run(su, "SELECT set_config('auditsql.user_agent', 'ua-raw', true)",
            "SELECT audit.set_actor('helper-1')")
        write(su, "helper after raw")
        run(su, "SELECT set_config('auditsql.actor_id', 'raw-2', true)")
        write(su, "raw after helper")
        assert scalar(su, "SELECT (audit.current_context()).actor_id") == "helper-1"
        run(su, "SELECT set_config('auditsql.context', '', true)")
        write(su, "stored context cleared")
        run(su, "SELECT audit.set_request('198.51.100.4')")
        write(su, "helper again")
        run(su, "SELECT audit.log_event('viewed')")
    assert actors(su, notes) == [("raw only", "raw-1"), ("helper after raw", "helper-1"),
                                 ("raw after helper", "helper-1"),
                                 ("stored context cleared", "raw-2"),
                                 ("helper again", "raw-2")]
    found = events(su, notes)
    assert found[1]["user_agent"] == "ua-raw"
    assert str(found[4]["ip_address"]) == "198.51.100.4"
    [logged] = events(su, actions=["viewed"])
    assert (logged["actor_id"], str(logged["ip_address"])) == ("raw-2", "198.51.100.4")


def test_the_stored_context_ends_with_the_transaction(su: Conn, notes: str) -> None:
    with su.transaction():
        run(su, "SELECT audit.set_context('u-1')")
    write(su, "after")
    assert scalar(su, "SELECT current_setting('auditsql.context', true)") == ""
    assert actors(su, notes) == [("after", None)]


def test_a_context_set_by_hand_that_is_no_context_row_fails_the_write(
        su: Conn, notes: str) -> None:
    with su.transaction():
        run(su, "SELECT set_config('auditsql.context', 'not a row', true)")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            write(su, "refused")
    assert actors(su, notes) == []


def test_application_name_is_stored_with_the_context(su: Conn, notes: str) -> None:
    """As the last helper found it; where none ran, as it is at the write,
    blank as NULL."""
    with su.transaction():
        run(su, "SET LOCAL application_name = 'at-helper'",
            "SELECT audit.set_context('u-1')",
            "SET LOCAL application_name = 'after-helper'")
        write(su, "helper")
    with su.transaction():
        run(su, "SET LOCAL application_name = 'no-helper'")
        write(su, "none")
    with su.transaction():
        run(su, "SET LOCAL application_name = ''")
        write(su, "blank")
    assert [(e["after"]["body"], e["application_name"]) for e in events(su, notes)] == [
        ("helper", "at-helper"), ("none", "no-helper"), ("blank", None)]


@pytest.mark.parametrize("arguments", [
    ("u-1", "u1@example.com", "member", "203.0.113.9", "UA/1", "req-1"),
    ("u-1", "", None, None, "", "req-1"),
    ("u-1", None, None, "2001:db8::1", None, None),
    ("u-1", None, None, "not an address", None, None),
    ("é" * 600, None, None, "203.0.113.9", None, None),
    ("x" * 1100, None, None, None, None, None),
])
def test_set_context_stores_what_the_settings_describe(su: Conn, arguments: tuple) -> None:
    """Short values and a dotted quad or none are stored from the
    arguments; the rest from the settings: the same context either way."""
    with su.transaction():
        su.execute("SELECT audit.set_context(%s, %s, %s, %s, %s, %s)", arguments)
        stored = scalar(su, "SELECT current_setting('auditsql.context')")
        assert stored == scalar(su, "SELECT audit.settings_context()::text")


def test_application_name_never_needs_the_cut(su: Conn) -> None:
    """Capture stores application_name as it is where no helper ran, without
    the cut: the server keeps it under NAMEDATALEN bytes (escaped on
    PostgreSQL 18, still far under the 1024 of the cut) whatever a client
    sets."""
    run(su, "CREATE TABLE apps (id int PRIMARY KEY)")
    attach(su, "apps")
    for i, value in enumerate(("x" * 5000, "é" * 2000)):
        with su.transaction():
            su.execute("SELECT set_config('application_name', %s, true)", (value,))
            su.execute("INSERT INTO apps VALUES (%s)", (i,))
            stored = scalar(su, "SELECT current_setting('application_name')")
        assert 0 < len(stored.encode()) < 1024
        assert scalar(su, "SELECT application_name FROM audit.events WHERE entity_type = 'public.apps'"
                          " AND entity_id = %s", (str(i),)) == stored


@pytest.mark.parametrize("action, statement", [
    ("truncated", "TRUNCATE notes"),
    ("attached", "SELECT audit.attach('notes', p_exclude => ARRAY['body'])"),
    ("retention_policy_set", "SELECT audit.set_retention('saas')"),
])
def test_truncate_and_system_events_read_the_stored_context_too(
        su: Conn, notes: str, action: str, statement: str) -> None:
    """TRUNCATE capture and auditsql's own events read auditsql.context as
    capture does: a set_config after the last helper is not seen, and
    application_name is as it was when the helper ran."""
    write(su, "truncated by the statement under test")
    last = scalar(su, "SELECT max(id) FROM audit.events")
    with su.transaction():
        run(su, "SET LOCAL application_name = 'at'", "SELECT audit.set_actor('h')",
            "SELECT set_config('auditsql.actor_id', 'raw', true)",
            "SET LOCAL application_name = 'later'", statement)
    recorded = su.execute("SELECT action, actor_id, application_name FROM audit.events"
                          " WHERE id > %s ORDER BY id", (last,)).fetchall()
    assert [tuple(r.values()) for r in recorded] == [(action, "h", "at")]


CONTEXT_COLUMNS = ("actor_id", "actor_email", "actor_role", "ip_address", "ip_address_raw",
                   "user_agent", "request_id", "application_name")


def test_current_context_is_what_the_next_event_records(su: Conn, notes: str) -> None:
    """auditsql.context when set, else settings_context(): in a transaction
    of set_config alone, after a helper, and after the stored context is
    cleared, current_context() equals the context of the event written next."""
    seen: list[dict[str, object]] = []

    def next_event_matches() -> None:
        expected = su.execute("SELECT (audit.current_context()).*").fetchone()
        assert expected is not None
        write(su, "next")
        event = events(su, notes)[-1]
        assert {k: event[k] for k in CONTEXT_COLUMNS} == dict(expected)
        seen.append(dict(expected))

    with su.transaction():
        run(su, "SELECT set_config('auditsql.actor_id', 'raw-1', true)",
            "SELECT set_config('auditsql.actor_email', 'r@example.com', true)",
            "SELECT set_config('auditsql.actor_role', 'member', true)",
            "SELECT set_config('auditsql.ip_address', 'not an address', true)",
            "SELECT set_config('auditsql.user_agent', 'UA/raw', true)",
            "SELECT set_config('auditsql.request_id', 'req-raw', true)",
            "SET LOCAL application_name = 'first'")
        next_event_matches()
        run(su, "SELECT audit.set_actor('helper', 'h@example.com')",
            "SELECT audit.set_request('203.0.113.9', NULL, 'req-h')",
            "SELECT set_config('auditsql.actor_id', 'raw-2', true)",
            "SET LOCAL application_name = 'second'")
        next_event_matches()
        run(su, "SELECT set_config('auditsql.context', '', true)")
        next_event_matches()
    assert [(c["actor_id"], c["ip_address_raw"], c["application_name"]) for c in seen] == [
        ("raw-1", "not an address", "first"), ("helper", None, "first"),
        ("raw-2", None, "second")]


@pytest.mark.parametrize("address", ["1.2.3.4", "not an address"])
def test_set_request_with_null_clears_the_request_and_leaves_the_actor(
        su: Conn, notes: str, address: str) -> None:
    request = ("ip_address", "ip_address_raw", "user_agent", "request_id")
    with su.transaction():
        run(su, "SELECT audit.set_actor('u-1', 'u1@example.com', 'member')")
        su.execute("SELECT audit.set_request(%s, 'ua', 'r')", (address,))
        write(su, "set")
        run(su, "SELECT audit.set_request(NULL)")
        write(su, "cleared")
    was, now = events(su, notes)
    assert [was[f] for f in request[2:]] == ["ua", "r"]
    assert str(was["ip_address"] or was["ip_address_raw"]) == address
    assert [now[f] for f in request] == [None] * 4
    assert [now[f] for f in ("actor_id", "actor_email", "actor_role")] == [
        "u-1", "u1@example.com", "member"]


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_a_value_set_with_set_config_alone_is_cut_with_the_marker_of_a_database_not_in_utf8(
        latin1_db: str, capture: str) -> None:  # noqa: F811
    """Capture cuts it as the helpers do: its first 1023 characters and '~'."""
    with psycopg.connect(latin1_db, autocommit=True) as plain:
        install(plain, Settings())
    with connect(latin1_db) as conn:
        run(conn, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
        attach(conn, "notes", capture=capture)
        with conn.transaction():
            conn.execute("SELECT set_config('auditsql.actor_id', %s, true)", ("é" * 2000,))
            run(conn, "INSERT INTO notes VALUES (1, 'é')")
        actor = scalar(conn, "SELECT actor_id FROM audit.events WHERE action = 'created'")
    assert actor == "é" * 1023 + "~"
