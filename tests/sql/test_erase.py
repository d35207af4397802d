"""Erasure: an audit administrator removes values from past events (a
person's right to erasure, a column redacted too late); it is recorded, and
the log stays append-only and passes verify."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from auditsql import checks
from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import (
    ADMIN,
    OPERATOR,
    OWNER,
    Conn,
    connect,
    count_events,
    dbname,
    events,
    expect_error,
    ident,
    month_partition,
    run,
    scalar,
    triggers,
)

USERS = "public.users"


@pytest.fixture
def users(su: Conn) -> str:
    """Two users, written, changed and one deleted, with an on-change policy
    on the password: every kind of event that can hold a value."""
    run(su, "CREATE TABLE users (id int PRIMARY KEY, email text, password_hash text, note text)",
        "SELECT audit.attach('users', p_on_change => '{\"password_hash\": \"password_changed\"}')",
        "INSERT INTO users VALUES (1, 'ada@example.com', 'h1', 'n1'),"
        " (2, 'bob@example.com', 'h2', 'n2')",
        "UPDATE users SET password_hash = 'h1b', email = 'ada@corp.example' WHERE id = 1",
        "UPDATE users SET password_hash = 'h2b' WHERE id = 2",
        "DELETE FROM users WHERE id = 1")
    return USERS


@pytest.fixture
def admin(pg: Server, installed_db: str, make_role: MakeRole, su: Conn) -> Conn:
    name = make_role()
    su.execute(sql.SQL("GRANT {} TO {}").format(ident(ADMIN), ident(name)))
    return connect(pg.dsn(dbname(installed_db), user=name))


def values(conn: Conn, entity_id: str, column: str) -> list[object]:
    """The column's value in before and after of each event of the entity."""
    rows = conn.execute(
        "SELECT before -> %(c)s AS b, after -> %(c)s AS a FROM audit.events"
        " WHERE entity_type = %(t)s AND entity_id = %(i)s AND category IN ('data', 'auth')"
        " ORDER BY id", {"c": column, "t": USERS, "i": entity_id}).fetchall()
    return [v for r in rows for v in (r["b"], r["a"]) if v is not None]


def verify_statuses(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        with conn.transaction(), conn.cursor() as cur:
            return {r.status for r in checks.run(checks.Context(cur, "audit", dsn=dsn))}


def test_a_persons_data_is_erased_and_the_erasure_recorded(
        su: Conn, users: str, admin: Conn, installed_db: str) -> None:
    before = count_events(su)
    erased = scalar(admin, "SELECT audit.erase(%s, '1', NULL, 'GDPR request 2026-41')", (users,))
    assert erased == 4  # created, updated, its password_changed, deleted
    for column in ("email", "password_hash", "note"):
        assert set(values(su, "1", column)) == {"[erased]"}, column
    assert values(su, "1", "id") == [1, 1, 1]  # the key stays
    assert "bob@example.com" in values(su, "2", "email")  # another entity is untouched
    assert set(values(su, "2", "password_hash")) == {"h2", "h2b"}
    # the events stay, who and when included; one more says what was erased
    assert count_events(su) == before + 1
    [event] = events(su, actions=["erased"], source="audit.events")
    assert (event["category"], event["entity_type"], event["entity_id"]) == ("system", USERS, "1")
    assert event["after"] == {"columns": "all but the key", "events": 4,
                              "reason": "GDPR request 2026-41",
                              "by": scalar(admin, "SELECT session_user")}
    # and the log is append-only as before, and passes verify
    partition = month_partition(su)
    expect_error(su, f"DELETE FROM {partition}", sqlstate="42501", contains="append-only")
    assert ("auditsql_guard_statement", "A") in triggers(su, partition)
    assert scalar(su, "SELECT has_table_privilege(%s, %s, 'UPDATE')", (OWNER, partition)) is False
    assert verify_statuses(installed_db) <= {"pass", "warn"}


def test_a_column_redacted_too_late_is_erased_throughout(su: Conn, users: str,
                                                        admin: Conn) -> None:
    attach_warning: list[str] = []
    su.add_notice_handler(lambda d: attach_warning.append(d.message_primary or ""))
    su.execute("SELECT audit.attach('users', p_redact => ARRAY['password_hash'])")
    assert any("hold password_hash in clear" in w for w in attach_warning), attach_warning
    assert scalar(admin, "SELECT audit.erase(%s, NULL, ARRAY['password_hash'], 'redacted"
                         " late')", (users,)) == 7
    for entity in ("1", "2"):
        assert set(values(su, entity, "password_hash")) == {"[erased]"}
    assert "ada@corp.example" in values(su, "1", "email")
    su.execute("UPDATE users SET password_hash = 'h2c' WHERE id = 2")
    assert values(su, "2", "password_hash")[-1] == "[redacted]"


def test_erasure_is_for_audit_administrators_only(
        pg: Server, installed_db: str, su: Conn, users: str, make_role: MakeRole,
        app_conn: Conn) -> None:
    before = count_events(su)
    for role in (OPERATOR, OWNER, "auditsql_reader"):
        name = make_role()
        su.execute(sql.SQL("GRANT {} TO {}").format(ident(role), ident(name)))
        with connect(pg.dsn(dbname(installed_db), user=name)) as conn:
            expect_error(conn, "SELECT audit.erase('public.users', '1', NULL, 'x')",
                         sqlstate="42501")
    expect_error(app_conn, "SELECT audit.erase('public.users', '1', NULL, 'x')",
                 sqlstate="42501")
    assert count_events(su) == before
    assert "ada@corp.example" in values(su, "1", "email")


@pytest.mark.parametrize(("args", "sqlstate", "message"), [
    (("public.users", "1", None, ""), "22023", "needs a reason"),
    (("public.users", "1", ["id"], "r"), "22023", "key columns"),
    (("public.users", "1", [], "r"), "22023", "must be named"),
    (("", "1", None, "r"), "22023", "needs an entity type"),
])
def test_bad_erasures_change_nothing(su: Conn, users: str, admin: Conn, args: tuple,
                                     sqlstate: str, message: str) -> None:
    before = count_events(su)
    expect_error(admin, "SELECT audit.erase(%s, %s, %s, %s)", args, sqlstate=sqlstate,
                 contains=message)
    assert count_events(su) == before and "ada@corp.example" in values(su, "1", "email")


def test_an_entity_under_legal_hold_is_not_erased(su: Conn, users: str, admin: Conn) -> None:
    admin.execute("SELECT audit.place_hold(%s, '2', 'Case 9')", (USERS,))
    expect_error(admin, "SELECT audit.erase(%s, '2', NULL, 'request')", (USERS,),
                 sqlstate="55006", contains="under legal hold")
    expect_error(admin, "SELECT audit.erase(%s, NULL, ARRAY['email'], 'request')", (USERS,),
                 sqlstate="55006")
    assert "bob@example.com" in values(su, "2", "email")
    # another entity of the table, not held, may be
    assert scalar(admin, "SELECT audit.erase(%s, '1', ARRAY['note'], 'r')", (USERS,)) == 3


def test_erasing_every_entity_of_a_type_with_one_held_is_refused(
        su: Conn, users: str, admin: Conn) -> None:
    """README: "an entity under legal hold is refused": erasing every entity
    of a type (no entity id) while any one of them is held is refused, and
    changes nothing, the entities not held included."""
    admin.execute("SELECT audit.place_hold(%s, '2', 'Case 9')", (USERS,))
    log_before = su.execute("SELECT id, before, after FROM audit.events ORDER BY id").fetchall()
    for columns in (None, ["email"], ["password_hash", "note"]):
        expect_error(admin, "SELECT audit.erase(%s, NULL, %s, 'request')", (USERS, columns),
                     sqlstate="55006", contains="under legal hold")
    assert su.execute("SELECT id, before, after FROM audit.events"
                      " ORDER BY id").fetchall() == log_before
    assert events(su, actions=["erased"]) == []
    assert "ada@corp.example" in values(su, "1", "email")
    assert "bob@example.com" in values(su, "2", "email")
