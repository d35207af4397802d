"""Application events (audit.log_event), context limits, the envelope view,
and the three questions the log must answer in one query each."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from auditsql import context, render
from tests.sql.sqltools import AppRole, Conn, attach, events, expect_error, run, scalar

WRITER = "auditsql_writer"


@pytest.fixture
def writer(su: Conn, app: AppRole, app_conn: Conn) -> Conn:
    """The application role's connection, granted the writer role."""
    su.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(WRITER), sql.Identifier(app.name)))
    return app_conn


def log(conn: Conn, *args: object) -> int:
    return int(scalar(conn, "SELECT audit.log_event(%s, %s, %s, %s)", args))


@pytest.mark.parametrize("action, category", [
    ("login", "auth"), ("login_failed", "auth"), ("logout", "auth"),
    ("password_changed", "auth"), ("password_reset", "auth"), ("role_changed", "auth"),
    ("permission_changed", "auth"), ("mfa_enabled", "auth"), ("mfa_disabled", "auth"),
    ("session_revoked", "auth"), ("invoice_sent", "app"),
])
def test_writer_logs_events_with_context(su: Conn, app: AppRole, writer: Conn,
                                         action: str, category: str) -> None:
    with writer.transaction():
        writer.execute("SELECT audit.set_actor('u-42', 'ada@example.com', 'member')")
        writer.execute("SELECT audit.set_request('203.0.113.7', 'UA/1', 'req-1')")
        event_id = log(writer, action, "user", "42", Jsonb({"method": "password"}))
        txid = scalar(writer, "SELECT txid_current()")
    [event] = events(su, None, actions=[action])
    assert event["id"] == event_id
    assert (event["category"], event["entity_type"], event["entity_id"]) == (category, "user", "42")
    assert event["after"] == {"method": "password"} and event["before"] is None
    assert (event["actor_id"], event["actor_email"], event["actor_role"]) == (
        "u-42", "ada@example.com", "member")
    assert (str(event["ip_address"]), event["user_agent"], event["request_id"]) == (
        "203.0.113.7", "UA/1", "req-1")
    assert event["db_user"] == app.name and event["txid"] == txid and not event["admin"]


def test_log_event_without_optional_arguments(su: Conn, writer: Conn) -> None:
    event_id = int(scalar(writer, "SELECT audit.log_event('logout')"))
    [event] = events(su, None, actions=["logout"])
    assert event["id"] == event_id and event["entity_type"] is None and event["actor_id"] is None


def test_admin_actor_marks_the_event(su: Conn, writer: Conn) -> None:
    with writer.transaction():
        writer.execute("SELECT audit.set_actor('u-1', NULL, 'admin')")
        log(writer, "role_changed", "user", "7", None)
    assert events(su, None, actions=["role_changed"])[0]["admin"] is True


def test_role_without_the_writer_role_cannot_log(su: Conn, app_conn: Conn) -> None:
    expect_error(app_conn, "SELECT audit.log_event('login')", sqlstate="42501")
    assert events(su, None, actions=["login"]) == []


# Every action auditsql writes itself (sql/fragments/macros.sql): the data
# actions, and the system actions, retention and legal holds among them.
RESERVED_ACTIONS = [
    "created", "updated", "deleted", "truncated", "snapshot",
    "attached", "detached", "configured", "retention_policy_set", "retention_applied",
    "default_rows_moved", "legal_hold_placed", "legal_hold_released", "audit_ddl",
    "partition_detached", "partition_reattached", "partition_dropped",
    "capture_triggers_replaced", "erased", "uninstalled",
]


def test_the_reserved_actions_are_those_auditsql_writes_and_the_docs_name() -> None:
    macros = (render.sql_root() / "fragments" / "macros.sql").read_text(encoding="utf-8")
    written = [name for kind in ("data_actions", "system_actions")
               for name in re.findall(r"'([a-z_]+)'", re.search(
                   rf"{kind} = \[(.*?)\]", macros, re.S).group(1))]  # type: ignore[union-attr]
    assert sorted(written) == sorted(RESERVED_ACTIONS)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sql.md").read_text(encoding="utf-8")
    refused = re.search(r"Data actions \((.*?)\) are\s+refused with SQLSTATE `42501`", docs, re.S)
    assert refused is not None
    assert sorted(re.findall(r"`([a-z_]+)`", refused.group(1))) == sorted(RESERVED_ACTIONS)
    # The README's row of the `action` column names each one.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `action` |"))
    data, system = row.split("data:")[1].split("auth and app:")[0], row.split("system:")[1]
    assert sorted(re.findall(r"`([a-z_]+)`", data + system)) == sorted(RESERVED_ACTIONS)


@pytest.mark.parametrize("action", RESERVED_ACTIONS)
def test_writer_cannot_forge_data_or_system_events(su: Conn, writer: Conn, action: str) -> None:
    expect_error(writer, "SELECT audit.log_event(%s, 'public.orders', '1')", (action,),
                 sqlstate="42501", contains="written by auditsql itself")
    assert events(su, None, actions=[action]) == []


@pytest.mark.parametrize("action", ["", "Login", "log in", "x" * 64, "login;", "1login",
                                    "'; DROP TABLE audit.events; --", "lögin"])
def test_invalid_action_names_are_refused(su: Conn, writer: Conn, action: str) -> None:
    expect_error(writer, "SELECT audit.log_event(%s)", (action,), sqlstate="22023",
                 contains="invalid action")
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE category <> 'system'") == 0


@pytest.mark.parametrize("action", ["a", "a" * 63, "step2"])
def test_action_names_of_one_to_63_characters_are_accepted(
        su: Conn, writer: Conn, action: str) -> None:
    event_id = log(writer, action, None, None, None)
    [event] = events(su, None, actions=[action])
    assert (event["id"], event["category"]) == (event_id, "app")


def test_details_are_accepted_up_to_64_kb_of_json_text_and_refused_past(
        su: Conn, writer: Conn) -> None:
    """Measured in bytes of the jsonb's text: two-byte characters count twice."""
    at_limit = Jsonb({"v": "é" * 32763 + "x"})
    assert scalar(su, "SELECT octet_length(%s::jsonb::text)", (at_limit,)) == 65536
    event_id = log(writer, "login", None, None, at_limit)
    assert events(su, None, actions=["login"])[0]["id"] == event_id
    error = expect_error(writer, "SELECT audit.log_event('logout', NULL, NULL, %s)",
                         (Jsonb({"v": "é" * 32763 + "xy"}),), sqlstate="54000")
    assert "got 65537 bytes" in str(error)
    assert events(su, None, actions=["logout"]) == []


def test_writer_cannot_write_the_log_directly(writer: Conn) -> None:
    expect_error(writer, "INSERT INTO audit.events (category, action) VALUES ('auth', 'login')",
                 sqlstate="42501")
    expect_error(writer, "SELECT audit.record_system_event('attached', 'x', NULL, NULL)",
                 sqlstate="42501")


# -- limits and hostile values -----------------------------------------------------

HOSTILE = [
    "O'Brien \"the\" \\\\ back\\slash",
    "'); DROP TABLE audit.events; --",
    "tab\tnew\nline\rreturn\x01\x1f",
    "ünïcødé ✓ 漢字 🙂",
    "\\0 \\x00 %s %% $1 $$ {{x}}",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_context_values_are_stored_exactly(su: Conn, writer: Conn, value: str) -> None:
    run(su, "CREATE TABLE notes (id int PRIMARY KEY)")
    attach(su, "notes")
    su.execute("GRANT INSERT ON notes TO auditsql_writer")
    with writer.transaction():
        writer.execute("SELECT audit.set_actor(%s, %s, %s)", (value, value, value))
        writer.execute("SELECT audit.set_request(%s, %s, %s)", (value, value, value))
        log(writer, "login", value, value, Jsonb({"v": value}))
        writer.execute("INSERT INTO notes VALUES (1)")
    for event in events(su, None, actions=["login", "created"]):
        assert (event["actor_id"], event["actor_email"], event["actor_role"]) == (value,) * 3
        assert (event["user_agent"], event["request_id"], event["ip_address_raw"]) == (value,) * 3
    [login] = events(su, None, actions=["login"])
    assert (login["entity_type"], login["entity_id"], login["after"]) == (value, value, {"v": value})
    assert scalar(su, "SELECT to_regclass('audit.events') IS NOT NULL")


def test_over_long_values_are_cut_by_the_helpers_and_in_capture(
        su: Conn, writer: Conn) -> None:
    """Context is never refused: cut to 1023 characters and a marker, by the
    helpers (a value set with set_config before one of them included) and,
    for a value set with set_config where no helper ran, by capture."""
    run(su, "CREATE TABLE notes (id int PRIMARY KEY)")
    attach(su, "notes")
    su.execute("GRANT INSERT ON notes TO auditsql_writer")
    exact, long = "é" * 1024, "é" * 1025
    with writer.transaction():
        writer.execute("SELECT audit.set_request(NULL, %s)", (long,))
        writer.execute("SELECT set_config('auditsql.request_id', %s, true)", ("ü" * 3000,))
        writer.execute("SELECT audit.set_actor(%s, %s)", (long, exact))
        log(writer, "login", None, None, None)
        writer.execute("INSERT INTO notes VALUES (1)")
    with writer.transaction():
        writer.execute("SELECT set_config('auditsql.actor_id', %s, true)", (long,))
        writer.execute("SELECT set_config('auditsql.actor_email', %s, true)", (exact,))
        writer.execute("SELECT set_config('auditsql.user_agent', %s, true)", (long,))
        writer.execute("SELECT set_config('auditsql.request_id', %s, true)", ("ü" * 3000,))
        log(writer, "logout", None, None, None)
        writer.execute("INSERT INTO notes VALUES (2)")
    found = events(su, None, actions=["login", "logout", "created"])
    assert len(found) == 4
    for event in found:
        assert event["actor_id"] == "é" * 1023 + "…"
        assert event["actor_email"] == exact
        assert event["user_agent"] == "é" * 1023 + "…"
        assert event["request_id"] == "ü" * 1023 + "…"


@pytest.mark.parametrize("argument, call", [
    ("entity_type", "SELECT audit.log_event('login', %s)"),
    ("entity_id", "SELECT audit.log_event('login', NULL, %s)"),
])
def test_over_long_log_event_arguments_are_refused_by_name(
        su: Conn, writer: Conn, argument: str, call: str) -> None:
    """What the event is about is the caller's own argument, not context: refused,
    with the argument named, and nothing written."""
    error = expect_error(writer, call, ("é" * 1025,), sqlstate="22001")
    assert str(error).startswith(f"auditsql: log_event {argument} is limited to 1024 characters")
    assert "got 1025" in str(error)
    log(writer, "login", "é" * 1024, "é" * 1024, None)
    assert [e["entity_type"] for e in events(su, None, actions=["login"])] == ["é" * 1024]


def test_over_long_log_event_details_are_refused_by_name(su: Conn, writer: Conn) -> None:
    error = expect_error(writer, "SELECT audit.log_event('login', NULL, NULL, %s)",
                         (Jsonb({"v": "x" * 70000}),), sqlstate="54000")
    assert str(error).startswith("auditsql: log_event details is limited to 64 kB of JSON text")
    assert events(su, None, actions=["login"]) == []


# -- the envelope and the three questions --------------------------------------------


@pytest.fixture
def story(su: Conn, writer: Conn) -> None:
    """A user record changed by a member, promoted by an admin, then deleted."""
    run(su, "CREATE TABLE users (id int PRIMARY KEY, email text, role text)",
        "INSERT INTO users VALUES (7, 'eve@example.com', 'member')")
    su.execute("SELECT audit.attach('users', NULL, NULL, NULL, NULL, %s)",
               (Jsonb({"role": "role_changed"}),))
    for actor, role, statement in (
        ("u-1", "member", "UPDATE users SET email = 'eve@corp.example' WHERE id = 7"),
        ("u-2", "admin", "UPDATE users SET role = 'owner' WHERE id = 7"),
        ("u-3", "admin", "DELETE FROM users WHERE id = 7"),
    ):
        with su.transaction():
            su.execute("SELECT audit.set_actor(%s, %s, %s)", (actor, f"{actor}@example.com", role))
            su.execute("SELECT audit.set_request('198.51.100.1', 'Console/2', %s)", (f"r-{actor}",))
            su.execute(statement)
    with writer.transaction():
        writer.execute("SELECT audit.set_actor('u-7', 'eve@example.com', 'owner')")
        log(writer, "login", "user", "7", None)


def test_who_modified_this_record(su: Conn, story: None) -> None:
    rows = su.execute(
        "SELECT actor_id, action, occurred_at FROM audit.events"
        " WHERE entity_type = 'public.users' AND entity_id = '7' AND category = 'data'"
        " ORDER BY id").fetchall()
    assert [(r["actor_id"], r["action"]) for r in rows] == [
        ("u-1", "updated"), ("u-2", "updated"), ("u-3", "deleted")]


def test_when_was_it_deleted(su: Conn, story: None) -> None:
    row = su.execute(
        "SELECT occurred_at, actor_id, before FROM audit.events"
        " WHERE entity_type = 'public.users' AND entity_id = '7' AND action = 'deleted'"
    ).fetchone()
    assert row["actor_id"] == "u-3" and row["before"]["role"] == "owner"
    assert row["occurred_at"] is not None


def test_which_admin_changed_the_users_role(su: Conn, story: None) -> None:
    rows = su.execute(
        "SELECT actor_id, actor_email, before ->> 'role' AS old_role, after ->> 'role' AS new_role"
        " FROM audit.events WHERE action = 'role_changed' AND admin AND entity_id = '7'"
    ).fetchall()
    assert [tuple(r.values()) for r in rows] == [("u-2", "u-2@example.com", "member", "owner")]


def test_envelope_shape(su: Conn, story: None) -> None:
    documents = [r["event"] for r in su.execute(
        "SELECT event FROM audit.envelope WHERE event #>> '{resource,entityId}' = '7'"
        " ORDER BY id").fetchall()]
    assert [d["action"] for d in documents] == [
        "updated", "updated", "role_changed", "deleted", "login"]
    promoted = documents[1]
    assert set(promoted) == {"id", "occurredAt", "category", "action", "admin", "actor",
                             "resource", "changes", "metadata"}
    assert promoted["actor"] == {"userId": "u-2", "email": "u-2@example.com", "role": "admin"}
    assert promoted["resource"] == {"entityType": "public.users", "entityId": "7"}
    assert promoted["changes"]["before"] == {"id": 7, "email": "eve@corp.example", "role": "member"}
    assert promoted["changes"]["after"]["role"] == "owner"
    assert promoted["changes"]["changedColumns"] == ["role"]
    assert promoted["metadata"]["ipAddress"] == "198.51.100.1"
    assert promoted["metadata"]["userAgent"] == "Console/2"
    assert promoted["metadata"]["requestId"] == "r-u-2"
    assert promoted["admin"] is True and promoted["category"] == "data"
    assert documents[2]["metadata"]["causedBy"] == promoted["id"]
    assert documents[0]["changes"]["before"]["email"] == "eve@example.com"
    login = documents[4]
    assert login["category"] == "auth" and login["changes"] == {
        "before": None, "after": None, "changedColumns": None}
    json.dumps(documents)  # plain JSON all the way down


def test_envelope_has_exactly_the_documented_keys_and_the_events_metadata(
        su: Conn, story: None) -> None:
    """README: `audit.envelope` gives each event as one JSON document
    `{id, occurredAt, category, action, admin, actor: {userId, email, role},
    resource: {entityType, entityId}, changes: {before, after, changedColumns},
    metadata: {ipAddress, userAgent, requestId, dbUser, applicationName,
    clientAddr, transactionId, causedBy}}`: those keys, no more, no fewer,
    at every level, with the values of the event."""
    rows = su.execute(
        "SELECT v.event, h.*, host(h.ip_address) AS ip, host(h.client_addr) AS client"
        " FROM audit.envelope AS v JOIN audit.history AS h ON h.id = v.id"
        " ORDER BY h.id").fetchall()
    assert len(rows) == scalar(su, "SELECT count(*) FROM audit.events") > 5
    for row in rows:
        document = row["event"]
        assert set(document) == {"id", "occurredAt", "category", "action", "admin", "actor",
                                 "resource", "changes", "metadata"}
        assert set(document["actor"]) == {"userId", "email", "role"}
        assert set(document["resource"]) == {"entityType", "entityId"}
        assert set(document["changes"]) == {"before", "after", "changedColumns"}
        assert set(document["metadata"]) == {"ipAddress", "userAgent", "requestId", "dbUser",
                                             "applicationName", "clientAddr",
                                             "transactionId", "causedBy"}
        assert (document["id"], document["category"], document["action"],
                document["admin"]) == (row["id"], row["category"], row["action"], row["admin"])
        assert datetime.fromisoformat(document["occurredAt"]) == row["occurred_at"]
        assert document["actor"] == {"userId": row["actor_id"], "email": row["actor_email"],
                                     "role": row["actor_role"]}
        assert document["resource"] == {"entityType": row["entity_type"],
                                        "entityId": row["entity_id"]}
        assert document["changes"] == {"before": row["before"], "after": row["after"],
                                       "changedColumns": row["changed_columns"]}
        assert document["metadata"] == {
            "ipAddress": row["ip"] or row["ip_address_raw"], "userAgent": row["user_agent"],
            "requestId": row["request_id"], "dbUser": row["db_user"],
            "applicationName": row["application_name"], "clientAddr": row["client"],
            "transactionId": row["txid"], "causedBy": row["caused_by"]}
    # the story set every metadata field somewhere, so none is compared as NULL alone
    for key in ("ipAddress", "userAgent", "requestId", "dbUser", "applicationName",
                "transactionId", "causedBy"):
        assert any(r["event"]["metadata"][key] is not None for r in rows), key


def test_python_log_event_helper(su: Conn, writer: Conn) -> None:
    event_id = context.log_event(writer, "login_failed", entity_type="user", entity_id="9",
                                 details={"reason": "bad password"}, actor_id=None,
                                 ip_address="192.0.2.1", user_agent="curl", request_id="r-9")
    [event] = events(su, None, actions=["login_failed"])
    assert event["id"] == event_id and event["category"] == "auth"
    assert str(event["ip_address"]) == "192.0.2.1" and event["after"] == {"reason": "bad password"}
