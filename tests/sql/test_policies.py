"""Column policies (exclude, redact, on-change), admin detail and required
actors, in both capture modes."""

from __future__ import annotations

import pytest
from psycopg.types.json import Jsonb

from tests.sql import sqltools
from tests.sql.sqltools import Conn, brief, events, expect_error, run, scalar

USERS = "public.users"
MARK = "[redacted]"


@pytest.fixture(autouse=True, params=["row", "statement"])
def capture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sqltools, "DEFAULT_CAPTURE", request.param)
    return str(request.param)


def attach(conn: Conn, *, exclude: list[str] | None = None, redact: list[str] | None = None,
           on_change: dict[str, str] | None = None, require_actor: bool | None = None) -> None:
    conn.execute(
        "SELECT audit.attach('users', NULL, %s, %s, %s, %s, %s)",
        (sqltools.DEFAULT_CAPTURE, exclude, redact,
         None if on_change is None else Jsonb(on_change), require_actor))


@pytest.fixture
def users(su: Conn) -> str:
    """users(id, name, role, password_hash, updated_at) with rows 1 and 2."""
    run(su, "CREATE TABLE users (id int PRIMARY KEY, name text, role text,"
            " password_hash text, updated_at timestamptz DEFAULT '2026-01-01')",
        "INSERT INTO users (id, name, role, password_hash)"
        " VALUES (1, 'ada', 'member', 'h1'), (2, 'bob', 'member', 'h2')")
    return USERS


def stored(conn: Conn, actions: tuple[str, ...] = ("updated",)) -> list[dict]:
    return events(conn, USERS, actions=list(actions), source="audit.events")


def as_actor(conn: Conn, role: str, *statements: str) -> None:
    with conn.transaction():
        conn.execute("SELECT audit.set_actor('u-1', 'ada@example.com', %s)", (role,))
        run(conn, *statements)


# -- exclude -----------------------------------------------------------------


def test_excluded_column_is_never_stored(su: Conn, users: str) -> None:
    attach(su, exclude=["updated_at"])
    run(su, "INSERT INTO users (id, name) VALUES (3, 'cy')",
        "UPDATE users SET name = 'ada l', updated_at = now() WHERE id = 1",
        "DELETE FROM users WHERE id = 2", "TRUNCATE users")
    recorded = events(su, users)
    assert brief(recorded[:3]) == [("created", "3"), ("updated", "1"), ("deleted", "2")]
    assert sorted(brief(recorded[3:])) == [("truncated", "1"), ("truncated", "3")]
    for event in recorded:
        for image in (event["before"], event["after"]):
            assert image is None or "updated_at" not in image
    assert recorded[1]["changed_columns"] == ["name"]


def test_update_of_excluded_columns_only_records_nothing(su: Conn, users: str) -> None:
    attach(su, exclude=["updated_at"])
    run(su, "UPDATE users SET updated_at = now()")
    assert events(su, users) == []
    run(su, "UPDATE users SET updated_at = now(), role = 'x' WHERE id = 2")
    assert brief(events(su, users)) == [("updated", "2")]


# -- redact ------------------------------------------------------------------


def test_redacted_column_shows_the_marker_and_still_counts_as_changed(su: Conn, users: str) -> None:
    attach(su, redact=["password_hash"])
    run(su, "INSERT INTO users (id, name, password_hash) VALUES (3, 'cy', 'h3')",
        "UPDATE users SET password_hash = 'new' WHERE id = 1",
        "UPDATE users SET name = 'bo' WHERE id = 2",
        "DELETE FROM users WHERE id = 3", "TRUNCATE users")
    recorded = events(su, users)
    assert recorded[0]["after"]["password_hash"] == MARK
    assert recorded[1]["changed_columns"] == ["password_hash"]
    assert recorded[1]["before"]["password_hash"] == recorded[1]["after"]["password_hash"] == MARK
    assert recorded[2]["changed_columns"] == ["name"]
    updates = stored(su)
    assert updates[0]["before"] == {"password_hash": MARK}
    assert updates[1]["before"] == {"name": "bob"}
    assert recorded[3]["before"]["password_hash"] == MARK
    assert {e["before"]["password_hash"] for e in recorded[4:]} == {MARK}
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE before::text LIKE '%%h1%%'"
                      " OR after::text LIKE '%%h1%%' OR before::text LIKE '%%new%%'") == 0


# -- on-change -----------------------------------------------------------------


def test_on_change_records_a_linked_auth_event(su: Conn, users: str) -> None:
    attach(su, redact=["password_hash"],
           on_change={"role": "role_changed", "password_hash": "password_changed"})
    with su.transaction():
        su.execute("SELECT audit.set_actor('u-9', 'root@example.com', 'support')")
        run(su, "UPDATE users SET role = 'owner' WHERE id = 1",
            "UPDATE users SET password_hash = 'x', role = 'guest' WHERE id = 2",
            "UPDATE users SET name = 'ada l' WHERE id = 1")
    data = events(su, users)
    auth = events(su, users, actions=["role_changed", "password_changed"])
    assert brief(data) == [("updated", "1"), ("updated", "2"), ("updated", "1")]
    assert sorted((e["action"], e["entity_id"]) for e in auth) == [
        ("password_changed", "2"), ("role_changed", "1"), ("role_changed", "2")]
    by_key = {(e["action"], e["entity_id"]): e for e in auth}
    role_1 = by_key[("role_changed", "1")]
    assert (role_1["before"], role_1["after"]) == ({"role": "member"}, {"role": "owner"})
    assert role_1["category"] == "auth" and role_1["caused_by"] == data[0]["id"]
    assert role_1["actor_id"] == "u-9" and role_1["txid"] == data[0]["txid"]
    password = by_key[("password_changed", "2")]
    assert (password["before"], password["after"]) == ({"password_hash": MARK},
                                                       {"password_hash": MARK})
    assert password["caused_by"] == by_key[("role_changed", "2")]["caused_by"] == data[1]["id"]


def test_policies_combined(su: Conn, users: str) -> None:
    attach(su, exclude=["updated_at"], redact=["password_hash"], on_change={"role": "role_changed"})
    run(su, "UPDATE users SET updated_at = now(), password_hash = 'z', role = 'admin' WHERE id = 1")
    [data] = events(su, users)
    assert data["changed_columns"] == ["role", "password_hash"]
    assert "updated_at" not in data["after"] and data["after"]["password_hash"] == MARK
    [auth] = events(su, users, actions=["role_changed"])
    assert auth["after"] == {"role": "admin"}


# -- admin -------------------------------------------------------------------


def test_admin_actions_carry_whole_rows_whatever_the_policies_but_redaction(
        su: Conn, users: str) -> None:
    attach(su, exclude=["updated_at"], redact=["password_hash"], on_change={"role": "role_changed"})
    as_actor(su, "admin", "UPDATE users SET role = 'owner', updated_at = '2026-02-02' WHERE id = 1",
             "UPDATE users SET updated_at = '2026-03-03' WHERE id = 2",
             "INSERT INTO users (id, name, password_hash) VALUES (3, 'cy', 'h3')")
    as_actor(su, "member", "UPDATE users SET role = 'x' WHERE id = 1")
    [admin_1, admin_2, member_1] = stored(su)
    assert admin_1["admin"] and admin_2["admin"] and not member_1["admin"]
    assert set(admin_1["before"]) == set(admin_1["after"]) == {
        "id", "name", "role", "password_hash", "updated_at"}
    assert admin_1["before"]["password_hash"] == admin_1["after"]["password_hash"] == MARK
    assert admin_1["changed_columns"] == ["role", "updated_at"]
    assert admin_2["changed_columns"] == ["updated_at"]  # excluded, yet an admin's change counts
    assert member_1["before"] == {"role": "owner"} and member_1["changed_columns"] is None
    [created] = events(su, users, actions=["created"])
    assert created["admin"] and "updated_at" in created["after"]
    history = events(su, users, actions=["updated"])
    assert history[0]["changed_columns"] == ["role", "updated_at"]
    assert history[0]["before"]["role"] == "member"
    [auth, _] = events(su, users, actions=["role_changed"])
    assert auth["admin"] and auth["before"] == {"role": "member"}


def test_admin_roles_are_configurable_and_recorded(su: Conn, users: str) -> None:
    attach(su)
    su.execute("SELECT audit.configure(ARRAY['dba', 'security'], NULL)")
    as_actor(su, "admin", "UPDATE users SET name = 'a' WHERE id = 1")
    as_actor(su, "dba", "UPDATE users SET name = 'b' WHERE id = 1")
    assert [e["admin"] for e in stored(su)] == [False, True]
    [configured] = events(su, None, actions=["configured"])
    assert configured["after"] == {"admin_roles": ["dba", "security"], "require_actor": False}
    assert configured["category"] == "system"
    expect_error(su, "SELECT audit.configure(ARRAY[''], NULL)", sqlstate="22023")


# -- required actor ------------------------------------------------------------


def test_table_that_requires_an_actor_refuses_anonymous_writes(su: Conn, users: str) -> None:
    attach(su, require_actor=True)
    for statement in ("INSERT INTO users (id) VALUES (3)", "UPDATE users SET name = 'x'",
                      "DELETE FROM users", "TRUNCATE users"):
        expect_error(su, statement, sqlstate="28000", contains="needs an actor")
    assert scalar(su, "SELECT count(*) FROM users") == 2
    as_actor(su, "member", "UPDATE users SET name = 'x' WHERE id = 1", "TRUNCATE users")
    recorded = brief(events(su, users))
    assert recorded[0] == ("updated", "1")
    assert sorted(recorded[1:]) == [("truncated", "1"), ("truncated", "2")]
    attach(su, require_actor=False)
    run(su, "INSERT INTO users (id) VALUES (4)")
    assert brief(events(su, users))[-1] == ("created", "4")


def test_required_actor_has_one_name_in_sql(su: Conn, users: str) -> None:
    """The column, attach's and configure's parameters all say require_actor."""
    su.execute("SELECT audit.attach('users', p_require_actor => true)")
    assert scalar(su, "SELECT require_actor FROM audit.tables") is True
    su.execute("SELECT audit.configure(p_require_actor => true)")
    assert scalar(su, "SELECT require_actor FROM audit.settings") is True
    for function in ("attach", "configure"):
        assert scalar(su, "SELECT count(*) FROM pg_proc WHERE proname = %s"
                      " AND 'p_strict' = ANY (proargnames)", (function,)) == 0


def test_installation_wide_required_actor(su: Conn, users: str) -> None:
    attach(su)
    su.execute("SELECT audit.configure(NULL, true)")
    expect_error(su, "UPDATE users SET name = 'x'", sqlstate="28000")
    su.execute("SELECT audit.configure(NULL, false)")
    run(su, "UPDATE users SET name = 'x' WHERE id = 1")
    assert brief(events(su, users)) == [("updated", "1")]


# -- attach semantics ----------------------------------------------------------


def test_attach_again_changes_policies_idempotently(su: Conn, users: str) -> None:
    attach(su, exclude=["updated_at"], redact=["password_hash"])
    attach(su, exclude=["updated_at"], redact=["password_hash"])
    attach(su)  # NULL keeps
    row = su.execute("SELECT exclude, redact, on_change, require_actor FROM audit.tables").fetchone()
    assert row == {"exclude": ["updated_at"], "redact": ["password_hash"], "on_change": {},
                   "require_actor": False}
    assert len(events(su, users, actions=["attached"])) == 1
    attach(su, exclude=[], on_change={"role": "role_changed"})
    row = su.execute("SELECT exclude, redact, on_change FROM audit.tables").fetchone()
    assert row == {"exclude": [], "redact": ["password_hash"], "on_change": {"role": "role_changed"}}
    assert len(events(su, users, actions=["attached"])) == 2
    run(su, "UPDATE users SET updated_at = now() WHERE id = 1")
    assert brief(events(su, users)) == [("updated", "1")]


@pytest.mark.parametrize("args, sqlstate, message", [
    ({"exclude": ["nope"]}, "42703", "does not have"),
    ({"redact": ["id"]}, "22023", "cannot be redacted"),
    ({"exclude": ["id"]}, "22023", "cannot be excluded"),
    ({"exclude": ["name"], "redact": ["name"]}, "22023", "both excluded and redacted"),
    ({"exclude": ["role"], "on_change": {"role": "role_changed"}}, "22023", "never stored"),
    ({"on_change": {"role": "Role Changed"}}, "22023", "invalid action"),
    ({"on_change": {"role": "updated"}}, "42501", "written by auditsql itself"),
    ({"on_change": {"role": "x'; DROP TABLE users; --"}}, "22023", "invalid action"),
])
def test_bad_policies_are_refused_and_change_nothing(
        su: Conn, users: str, args: dict, sqlstate: str, message: str) -> None:
    attach(su, redact=["password_hash"])
    with pytest.raises(Exception) as failure:
        with su.transaction():
            attach(su, **args)
    assert getattr(failure.value, "sqlstate", None) == sqlstate, failure.value
    assert message in str(failure.value)
    row = su.execute("SELECT exclude, redact, on_change FROM audit.tables").fetchone()
    assert row == {"exclude": [], "redact": ["password_hash"], "on_change": {}}
    assert scalar(su, "SELECT count(*) FROM users") == 2
