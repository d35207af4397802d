"""Column policies, required actors and admin roles from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.clitools import (
    error_line,
    execute,
    ok,
    query,
    run,
    scalar,
    usage_error,
)

SETUP = """
CREATE TABLE users (id int PRIMARY KEY, name text, role text, password_hash text,
                    updated_at timestamptz);
INSERT INTO users VALUES (1, 'ada', 'member', 'h1', now());
"""


@pytest.fixture(scope="module")
def dsn(module_db: str) -> str:
    execute(module_db, SETUP)
    ok("install", "--dsn", module_db)
    return module_db


@pytest.fixture
def users(dsn: str) -> Iterator[str]:
    yield dsn
    execute(dsn, "SELECT audit.detach(relid::regclass) FROM audit.tables;"
                 "SELECT audit.configure(ARRAY['admin'], false)")


def policies(dsn: str) -> tuple:
    return query(dsn, "SELECT exclude, redact, on_change, require_actor FROM audit.tables")[0]


def test_attach_with_every_policy_and_status_shows_them(users: str) -> None:
    ok("attach", "--dsn", users, "users", "--exclude", "updated_at", "--redact", "password_hash",
       "--on-change", "role=role_changed", "--on-change", "password_hash=password_changed",
       "--require-actor")
    assert policies(users) == (["updated_at"], ["password_hash"],
                               {"role": "role_changed", "password_hash": "password_changed"}, True)
    text = ok("status", "--dsn", users).stdout
    for needle in ("exclude updated_at", "redact password_hash", "on change role: role_changed",
                   "require actor"):
        assert needle in text
    [table] = json.loads(ok("status", "--dsn", users, "--json").stdout)["tables"]
    assert table["exclude"] == ["updated_at"] and table["require_actor"] is True
    assert table["on_change"] == {"role": "role_changed", "password_hash": "password_changed"}
    assert table["healthy"] is True


def test_policies_not_named_are_kept_and_clear_resets(users: str) -> None:
    ok("attach", "--dsn", users, "users", "--exclude", "updated_at", "--redact", "password_hash")
    ok("attach", "--dsn", users, "users", "--on-change", "role=role_changed")
    assert policies(users) == (["updated_at"], ["password_hash"], {"role": "role_changed"}, False)
    ok("attach", "--dsn", users, "users", "--clear-policies", "--redact", "name")
    assert policies(users) == ([], ["name"], {}, False)


@pytest.mark.parametrize("on, off", [("--require-actor", "--no-require-actor"),
                                     ("--strict", "--no-strict")])  # the earlier names
def test_required_actor_from_the_cli(users: str, on: str, off: str) -> None:
    ok("attach", "--dsn", users, "users", on)
    assert policies(users)[3] is True
    with pytest.raises(Exception, match="needs an actor"):
        execute(users, "UPDATE users SET name = 'x'")
    ok("attach", "--dsn", users, "users", off)
    assert policies(users)[3] is False
    execute(users, "UPDATE users SET name = 'y'")


@pytest.mark.parametrize("args, needles", [
    (["--on-change", "role"], ["COLUMN=ACTION"]),
    (["--on-change", "=x"], ["COLUMN=ACTION"]),
    (["--on-change", "role=a", "--on-change", "role=b"], ["twice"]),
])
def test_malformed_on_change_is_a_usage_error(users: str, args: list[str], needles: list[str]) -> None:
    res = run("attach", "--dsn", users, "users", *args)
    error_line(res, 2, *needles)
    assert scalar(users, "SELECT count(*) FROM audit.tables") == 0


@pytest.mark.parametrize("args, code, needles", [
    (["--exclude", "nope"], 1, ["does not have"]),  # an unknown column, like an unknown table
    (["--redact", "id"], 2, ["cannot be redacted"]),
    (["--on-change", "role=updated"], 2, ["written by auditsql itself"]),
    (["--on-change", "role=x'; DROP TABLE users; --"], 2, ["invalid --on-change action"]),
])
def test_bad_policy_fails_without_partial_state(users: str, args: list[str], code: int,
                                                needles: list[str]) -> None:
    res = run("attach", "--dsn", users, "users", *args)
    error_line(res, code, *needles)
    assert scalar(users, "SELECT count(*) FROM audit.tables") == 0
    assert scalar(users, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass") == 0
    assert scalar(users, "SELECT count(*) FROM users") == 1


def test_unknown_capture_mode_is_a_usage_error(users: str) -> None:
    usage_error(run("attach", "--dsn", users, "users", "--capture", "bulk"), "--capture")


@pytest.mark.parametrize("on, off", [("--require-actor", "--no-require-actor"),
                                     ("--strict", "--no-strict")])  # the earlier names
def test_install_sets_admin_roles_and_required_actor(users: str, on: str, off: str) -> None:
    ok("install", "--dsn", users, "--admin-actor-roles", "dba,security", on)
    assert query(users, "SELECT admin_roles, require_actor FROM audit.settings") == [
        (["dba", "security"], True)]
    ok("install", "--dsn", users)  # omitted: kept
    assert query(users, "SELECT admin_roles, require_actor FROM audit.settings") == [
        (["dba", "security"], True)]
    ok("install", "--dsn", users, off)
    assert scalar(users, "SELECT require_actor FROM audit.settings") is False
    error_line(run("install", "--dsn", users, "--admin-actor-roles", "a,,b"), 2, "--admin-actor-roles")
    dry = ok("install", "--dsn", users, "--dry-run", "--admin-actor-roles", "x").stdout
    assert "\"audit\".configure('{x}'::text[], NULL::boolean);\nCOMMIT;" in dry
