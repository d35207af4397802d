"""`auditsql erase`, and the warning attach gives when redaction comes after
events were recorded."""

from __future__ import annotations

import pytest

from tests.cli.clitools import error_line, execute, ok, query, run, scalar
from tests.harness.server import Server


@pytest.fixture
def users(installed_db: str) -> str:
    db = installed_db
    execute(db, "CREATE TABLE users (id int PRIMARY KEY, email text, pw text)")
    ok("attach", "--dsn", db, "users")
    execute(db, "INSERT INTO users VALUES (1, 'ada@example.com', 'h1'), (2, 'b@example.com', 'h2');"
                " UPDATE users SET pw = 'h1b' WHERE id = 1")
    return db


def test_redaction_added_later_warns_and_erase_removes_the_values(users: str) -> None:
    res = ok("attach", "--dsn", users, "users", "--redact", "pw")
    assert res.stderr.splitlines()[1].startswith(
        "warning: events of public.users recorded before now hold pw in clear;")
    assert "auditsql erase public.users --all --column" in res.stderr
    done = ok("erase", "--dsn", users, "public.users", "--all", "--column", "pw",
              "--reason", "redacted late")
    assert done.stdout == "3\n"
    assert done.stderr == "erased values from 3 events of public.users\n"
    assert query(users, "SELECT DISTINCT coalesce(before ->> 'pw', after ->> 'pw')"
                        " FROM audit.events WHERE action IN ('created', 'updated')") == [
        ("[erased]",)]
    assert scalar(users, "SELECT after ->> 'reason' FROM audit.events WHERE action = 'erased'") \
        == "redacted late"


def test_a_persons_data(users: str) -> None:
    ok("erase", "--dsn", users, "public.users", "1", "--all-columns", "--reason", "GDPR 41")
    assert query(users, "SELECT entity_id, after ->> 'email' FROM audit.events"
                        " WHERE action = 'created' ORDER BY id") == [
        ("1", "[erased]"), ("2", "b@example.com")]


@pytest.mark.parametrize(("args", "needle"), [
    (("public.users", "1", "--reason", "r"), "--column"),
    (("public.users", "1", "--column", "pw", "--all-columns", "--reason", "r"), "--column"),
    (("public.users", "--column", "pw", "--reason", "r"), "--all"),
    (("public.users", "1", "--all", "--column", "pw", "--reason", "r"), "--all"),
    (("public.users", "1", "--column", "pw"), "reason"),
    (("public.users", "1", "--column", "id", "--reason", "r"), "key columns"),
])
def test_bad_erasures_are_usage_errors(users: str, args: tuple[str, ...], needle: str) -> None:
    before = scalar(users, "SELECT count(*) FROM audit.events")
    error_line(run("erase", "--dsn", users, *args), 2, needle)
    assert scalar(users, "SELECT count(*) FROM audit.events") == before


def test_a_held_entity_is_not_erased(users: str) -> None:
    ok("retention", "hold", "--dsn", users, "public.users", "1", "--reason", "Case 3")
    error_line(run("erase", "--dsn", users, "public.users", "1", "--all-columns",
                   "--reason", "r"), 1, "under legal hold")


def test_only_an_audit_administrator(pg: Server, users: str, make_role) -> None:  # noqa: ANN001
    role = make_role()
    execute(users, f'GRANT auditsql_reader TO "{role}"')
    dsn = pg.dsn(scalar(users, "SELECT current_database()"), user=role)
    error_line(run("erase", "--dsn", dsn, "public.users", "1", "--all-columns", "--reason", "r"),
               1, "must be a member of auditsql_admin")
