"""Actor and request context: what events carry, and for how long."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

import auditsql
from auditsql.installer import install
from auditsql.render import Settings
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import (
    APPLICATION_NAME,
    AppRole,
    Conn,
    Event,
    attach,
    connect,
    dbname,
    events,
    run,
    scalar,
)

ACTOR_FIELDS = ("actor_id", "actor_email", "actor_role", "ip_address", "ip_address_raw",
                "user_agent", "request_id")


@pytest.fixture
def notes(su: Conn) -> str:
    """An attached table ``notes``, writable by anyone."""
    run(su, "CREATE TABLE notes (id int PRIMARY KEY, body text)",
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON notes TO PUBLIC")
    attach(su, "notes")
    return "public.notes"


def context_of(event: Event) -> dict[str, object]:
    """The actor and request fields of an event."""
    return {k: event[k] for k in ACTOR_FIELDS}


def no_context() -> dict[str, object]:
    """Actor and request fields of an event written without context."""
    return dict.fromkeys(ACTOR_FIELDS)


def full_context(ip: object = ipaddress.ip_address("203.0.113.7")) -> dict[str, object]:
    """The fields written by ``write_with_context``."""
    return {"actor_id": "u-42", "actor_email": "ada@example.com", "actor_role": "admin",
            "ip_address": ip, "ip_address_raw": None, "user_agent": "UA/1", "request_id": "req-1"}


def write_with_context(conn: Conn, statement: str, ip: str = "203.0.113.7") -> None:
    """Run *statement* in a transaction that sets actor and request first."""
    with conn.transaction():
        conn.execute("SELECT audit.set_actor('u-42', 'ada@example.com', 'admin')")
        conn.execute("SELECT audit.set_request(%s, 'UA/1', 'req-1')", (ip,))
        conn.execute(statement)


def test_context_is_recorded_for_the_transaction(su: Conn, notes: str) -> None:
    with su.transaction():
        su.execute("SELECT audit.set_actor('u-42', 'ada@example.com', 'admin')")
        su.execute("SELECT audit.set_request('203.0.113.7', 'UA/1', 'req-1')")
        su.execute("INSERT INTO notes VALUES (1, 'a')")
        su.execute("UPDATE notes SET body = 'b'")
    recorded = events(su, notes)
    assert [context_of(e) for e in recorded] == [full_context()] * 2
    assert recorded[0]["txid"] == recorded[1]["txid"]


def test_context_reaches_every_capture_path(su: Conn, notes: str) -> None:
    run(su, "CREATE TABLE parts (id int PRIMARY KEY) PARTITION BY RANGE (id)",
        "CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (100)",
        "INSERT INTO notes VALUES (1, 'a')")
    with su.transaction():
        su.execute("SELECT audit.set_actor('u-42', 'ada@example.com', 'admin')")
        su.execute("SELECT audit.set_request('203.0.113.7', 'UA/1', 'req-1')")
        attach(su, "parts")
        run(su, "INSERT INTO parts VALUES (1)", "TRUNCATE parts", "TRUNCATE notes")
    recorded = events(su, actions=["attached", "created", "truncated"])[-4:]
    assert [(e["action"], e["entity_type"]) for e in recorded] == [
        ("attached", "public.parts"), ("created", "public.parts"),
        ("truncated", "public.parts"), ("truncated", "public.notes")]
    assert [context_of(e) for e in recorded] == [full_context()] * 4


def test_context_ends_with_the_transaction(su: Conn, notes: str) -> None:
    write_with_context(su, "INSERT INTO notes VALUES (1, 'a')")
    su.execute("INSERT INTO notes VALUES (2, 'b')")
    with su.transaction():
        su.execute("INSERT INTO notes VALUES (3, 'c')")
    su.execute("SELECT audit.set_actor('u-1', 'x@example.com', 'r')")
    su.execute("INSERT INTO notes VALUES (4, 'd')")
    assert [context_of(e) for e in events(su, notes)] == [full_context()] + [no_context()] * 3
    assert scalar(su, "SELECT coalesce(current_setting('auditsql.actor_id', true), '')") == ""


def test_context_of_rolled_back_transaction_does_not_leak(su: Conn, notes: str) -> None:
    su.autocommit = False
    su.execute("SELECT audit.set_actor('ghost')")
    su.rollback()
    su.execute("INSERT INTO notes VALUES (1, 'a')")
    su.commit()
    assert [context_of(e) for e in events(su, notes)] == [no_context()]


def test_null_clears_a_value(su: Conn, notes: str) -> None:
    with su.transaction():
        su.execute("SELECT audit.set_actor('u-42', 'ada@example.com', 'admin')")
        su.execute("SELECT audit.set_actor(NULL)")
        su.execute("INSERT INTO notes VALUES (1, 'a')")
    assert [context_of(e) for e in events(su, notes)] == [no_context()]


def test_without_context_connection_fields_are_recorded(pg: Server, su: Conn, notes: str) -> None:
    su.execute("INSERT INTO notes VALUES (1, 'a')")
    [event] = events(su, notes)
    assert context_of(event) == no_context()
    assert event["db_user"] == pg.superuser
    assert event["application_name"] == APPLICATION_NAME
    if str(pg.params.get("host", "")).startswith("/"):
        assert event["client_addr"] is None


def tcp_host(pg: Server) -> str:
    """A host reaching the server over TCP: 127.0.0.1 for a throwaway cluster."""
    host = str(pg.params.get("host", ""))
    if pg.cluster is not None:
        return "127.0.0.1"
    if not host or host.startswith("/"):
        pytest.skip("the server is reachable over a unix socket only")
    return host


def test_client_addr_over_tcp(pg: Server, installed_db: str, notes: str, su: Conn) -> None:
    with connect(pg.dsn(dbname(installed_db), host=tcp_host(pg))) as tcp:
        tcp.execute("INSERT INTO notes VALUES (1, 'a')")
    [event] = events(su, notes)
    assert event["client_addr"] is not None
    if pg.cluster is not None:
        assert str(event["client_addr"]) == "127.0.0.1"


def test_client_addr_is_the_sessions_never_the_context_ip_address(
        pg: Server, installed_db: str, notes: str, su: Conn) -> None:
    """The client address is the session's, read for each event, never from
    the setting: ip_address is the context's, client_addr the TCP peer."""
    with connect(pg.dsn(dbname(installed_db), host=tcp_host(pg))) as tcp, tcp.transaction():
        tcp.execute("SELECT audit.set_context('u-42', ip_address => '203.0.113.7')")
        tcp.execute("INSERT INTO notes VALUES (1, 'a')")
        tcp.execute("SELECT audit.log_event('viewed', 'note', '1')")
        peer = scalar(tcp, "SELECT inet_client_addr()")
    recorded = events(su, actions=["created", "viewed"])
    assert [e["action"] for e in recorded] == ["created", "viewed"]
    assert peer is not None and str(peer) != "203.0.113.7"
    if pg.cluster is not None:
        assert str(peer) == "127.0.0.1"
    for event in recorded:
        assert (event["client_addr"], str(event["ip_address"])) == (peer, "203.0.113.7")


def test_db_user_is_the_session_user(pg: Server, su: Conn, app: AppRole, notes: str) -> None:
    su.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(app.name)))
    su.execute("INSERT INTO notes VALUES (1, 'a')")
    su.execute("RESET ROLE")
    with connect(app.dsn) as conn:
        conn.execute("INSERT INTO notes VALUES (2, 'b')")
    assert [e["db_user"] for e in events(su, notes)] == [pg.superuser, app.name]


@pytest.mark.parametrize("raw", ["not-an-ip", "999.1.1.1", "10.0.0.1/99", "::g"])
def test_malformed_ip_address_is_kept_raw(su: Conn, notes: str, raw: str) -> None:
    write_with_context(su, "INSERT INTO notes VALUES (1, 'a')", ip=raw)
    [event] = events(su, notes)
    assert event["ip_address"] is None
    assert event["ip_address_raw"] == raw
    assert event["actor_id"] == "u-42"
    assert scalar(su, "SELECT count(*) FROM notes") == 1


def test_ipv6_address_is_stored_as_inet(su: Conn, notes: str) -> None:
    write_with_context(su, "INSERT INTO notes VALUES (1, 'a')", ip="2001:db8::1")
    [event] = events(su, notes)
    assert event["ip_address"] == ipaddress.ip_address("2001:db8::1")
    assert event["ip_address_raw"] is None
    assert scalar(su, "SELECT pg_typeof(ip_address)::text FROM audit.events"
                      " WHERE id = %s", (event["id"],)) == "inet"


def test_set_config_works_like_the_helpers(su: Conn, notes: str) -> None:
    with su.transaction():
        for name, value in [("actor_id", "u-42"), ("actor_email", "ada@example.com"),
                            ("actor_role", "admin"), ("ip_address", "203.0.113.7"),
                            ("user_agent", "UA/1"), ("request_id", "req-1")]:
            su.execute("SELECT set_config(%s, %s, true)", (f"auditsql.{name}", value))
        su.execute("INSERT INTO notes VALUES (1, 'a')")
    su.execute("INSERT INTO notes VALUES (2, 'b')")
    assert [context_of(e) for e in events(su, notes)] == [full_context(), no_context()]


def test_any_role_may_set_context(pg: Server, installed_db: str, su: Conn,
                                  make_role: MakeRole, notes: str) -> None:
    nobody = make_role()
    with connect(pg.dsn(dbname(installed_db), user=nobody)) as conn:
        write_with_context(conn, "INSERT INTO notes VALUES (1, 'a')")
    [event] = events(su, notes)
    assert context_of(event) == full_context()
    assert event["db_user"] == nobody


def test_audit_context_commits_with_context(installed_db: str, su: Conn, notes: str) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        with auditsql.audit_context(conn, actor_id="u-42", email="ada@example.com",
                                    role="admin", ip_address="203.0.113.7",
                                    user_agent="UA/1", request_id="req-1"):
            conn.execute("INSERT INTO notes VALUES (1, 'a')")
        conn.execute("INSERT INTO notes VALUES (2, 'b')")
    assert [context_of(e) for e in events(su, notes)] == [full_context(), no_context()]
    assert scalar(su, "SELECT count(*) FROM notes") == 2


def test_audit_context_rolls_back_on_error(installed_db: str, su: Conn, notes: str) -> None:
    with (psycopg.connect(installed_db, autocommit=True) as conn,
          pytest.raises(RuntimeError),
          auditsql.audit_context(conn, actor_id="u-42")):
        conn.execute("INSERT INTO notes VALUES (1, 'a')")
        raise RuntimeError("boom")
    assert events(su, notes) == []
    assert scalar(su, "SELECT count(*) FROM notes") == 0


def test_audit_context_inside_open_transaction(installed_db: str, su: Conn, notes: str) -> None:
    with psycopg.connect(installed_db) as conn:
        conn.execute("INSERT INTO notes VALUES (1, 'a')")
        with auditsql.audit_context(conn, actor_id="u-42"):
            conn.execute("INSERT INTO notes VALUES (2, 'b')")
        conn.rollback()
    assert events(su, notes) == []


# -- over-long values: cut, never fatal ---------------------------------------------

SETTINGS = {"actor_id": "actor_id", "actor_email": "actor_email", "actor_role": "actor_role",
            "ip_address": "ip_address_raw", "user_agent": "user_agent", "request_id": "request_id"}


def cut(value: str | None) -> str | None:
    """A context value as events store it: NULL for empty, at most 1024
    characters, the last of a cut one a marker."""
    if not value:
        return None
    return value if len(value) <= 1024 else value[:1023] + "…"


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_long_user_agent_through_audit_context_is_cut(installed_db: str, su: Conn,
                                                     capture: str) -> None:
    """Any client may send a User-Agent this long: the write commits."""
    run(su, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    attach(su, "notes", capture=capture)
    agent = "Mozilla/5.0 " + "x" * 4988
    with psycopg.connect(installed_db, autocommit=True) as conn:
        with auditsql.audit_context(conn, actor_id="u-42", user_agent=agent, request_id="r-1"):
            conn.execute("INSERT INTO notes VALUES (1, 'a')")
            conn.execute("UPDATE notes SET body = 'b'")
            conn.execute("DELETE FROM notes")
    recorded = events(su, "public.notes")
    assert [e["action"] for e in recorded] == ["created", "updated", "deleted"]
    for event in recorded:
        assert len(event["user_agent"]) == 1024 and event["user_agent"].endswith("…")
        assert event["user_agent"] == agent[:1023] + "…"
        assert (event["actor_id"], event["request_id"]) == ("u-42", "r-1")


def test_long_values_set_with_set_config_are_cut_on_every_path(su: Conn) -> None:
    """Row and statement capture, TRUNCATE, log_event and system events all
    cut a value set directly the same way, and never fail for it."""
    run(su, "CREATE TABLE rows_t (id int PRIMARY KEY)", "CREATE TABLE stmt_t (id int PRIMARY KEY)")
    attach(su, "rows_t", capture="row")
    attach(su, "stmt_t", capture="statement")
    values = {name: name[0] * 5000 for name in SETTINGS}
    with su.transaction():
        for name, value in values.items():
            su.execute("SELECT set_config(%s, %s, true)", (f"auditsql.{name}", value))
        run(su, "INSERT INTO rows_t VALUES (1)", "INSERT INTO stmt_t VALUES (1)",
            "TRUNCATE rows_t", "SELECT audit.log_event('login')")
        attach(su, "rows_t", capture="statement")
    recorded = [e for e in events(su, actions=["created", "truncated", "login", "attached"])
                if e["txid"] == events(su, "public.rows_t", ["truncated"])[0]["txid"]]
    assert sorted(e["action"] for e in recorded) == [
        "attached", "created", "created", "login", "truncated"]
    for event in recorded:
        for name, column in SETTINGS.items():
            assert event[column] == name[0] * 1023 + "…", (event["action"], column)
        assert event["ip_address"] is None
    assert scalar(su, "SELECT count(*) FROM rows_t") == 0
    assert scalar(su, "SELECT count(*) FROM stmt_t") == 1


@pytest.mark.parametrize("length", [0, 1, 1023, 1024, 1025, 2048, 5000])
@pytest.mark.parametrize("setter", ["set_actor", "set_request", "set_context", "set_config"])
def test_the_cut_rule_at_the_limit(su: Conn, notes: str, setter: str, length: int) -> None:
    """Up to 1024 characters a value is kept whole; past that it is its
    first 1023 and '…', 1024 in all, whichever way it was set."""
    value = ("ü" + "a" * 9) * (length // 10) + "ü" * (length % 10)
    assert len(value) == length
    calls = {
        "set_actor": ("SELECT audit.set_actor(%s)", "actor_id"),
        "set_request": ("SELECT audit.set_request(NULL, %s)", "user_agent"),
        "set_context": ("SELECT audit.set_context(request_id => %s)", "request_id"),
        "set_config": ("SELECT set_config('auditsql.actor_email', %s, true)", "actor_email"),
    }
    statement, column = calls[setter]
    with su.transaction():
        su.execute(statement, (value,))
        su.execute("INSERT INTO notes VALUES (1, 'a')")
    [event] = events(su, notes)
    assert event[column] == cut(value)
    if length > 1024:
        assert len(event[column]) == 1024 and event[column].endswith("…")


def test_a_long_malformed_ip_address_never_fails_a_write(su: Conn, notes: str) -> None:
    raw = "203.0.113.7" + " junk" * 1000
    with su.transaction():
        su.execute("SELECT audit.set_request(%s)", (raw,))
        su.execute("INSERT INTO notes VALUES (1, 'a')")
    [event] = events(su, notes)
    assert event["ip_address"] is None and event["ip_address_raw"] == cut(raw)


@pytest.fixture
def latin1_db(pg: Server) -> Iterator[str]:
    """DSN of a fresh database in LATIN1, which has no '…'."""
    name = unique_name("auditsql_t")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'LATIN1'"
                               " LC_COLLATE 'C' LC_CTYPE 'C'").format(sql.Identifier(name)))
    try:
        yield pg.dsn(name)
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_cut_value_is_marked_in_a_database_not_in_utf8(latin1_db: str) -> None:
    """Where '…' cannot be written, '~' marks the cut: the write still commits."""
    with psycopg.connect(latin1_db, autocommit=True) as conn:
        install(conn, Settings())
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("SELECT audit.attach('notes')")
        with auditsql.audit_context(conn, actor_id="é" * 2000, user_agent="short"):
            conn.execute("INSERT INTO notes VALUES (1, 'é')")
        actor, agent = conn.execute(
            "SELECT actor_id, user_agent FROM audit.events WHERE action = 'created'").fetchone()
    assert actor == "é" * 1023 + "~" and agent == "short"


# -- ids of any scalar type -----------------------------------------------------------

@pytest.mark.parametrize("actor_id, stored", [
    (42, "42"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (Decimal("1.50"), "1.50"),
    (2**40, "1099511627776"),
    ("u-42", "u-42"),
])
def test_ids_of_any_scalar_type(installed_db: str, su: Conn, notes: str,
                                actor_id: object, stored: str) -> None:
    """A Django user.pk is an int, a request id often a UUID: stored as their text."""
    request_id = uuid.UUID("87654321-4321-8765-4321-876543218765")
    with psycopg.connect(installed_db, autocommit=True) as conn:
        with auditsql.audit_context(conn, actor_id=actor_id, request_id=request_id,
                                    ip_address=ipaddress.ip_address("203.0.113.7")):
            conn.execute("INSERT INTO notes VALUES (1, 'a')")
        with conn.transaction(), conn.cursor() as cur:
            auditsql.set_actor(cur, actor_id)
            auditsql.set_request(cur, None, None, 7)
            cur.execute("INSERT INTO notes VALUES (2, 'b')")
    first, second = events(su, notes)
    assert first["actor_id"] == stored and first["request_id"] == str(request_id)
    assert str(first["ip_address"]) == "203.0.113.7"
    assert (second["actor_id"], second["request_id"]) == (stored, "7")
