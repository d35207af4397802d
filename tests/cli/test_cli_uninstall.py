"""`auditsql uninstall`: what install created goes, the log stays unless
--drop-data (confirmed by the schema's name), one transaction."""

from __future__ import annotations

import os
import pty
import subprocess

import pytest
from psycopg import sql

from tests.cli.clitools import (
    audit_triggers_anywhere,
    cli_command,
    cli_env,
    dbname,
    error_line,
    execute,
    ok,
    query,
    role_exists,
    run,
    scalar,
    schema_exists,
)
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole, drop_role
from tests.harness.server import Server

ROLES = ("owner", "reader", "writer", "operator", "admin")


@pytest.fixture
def installed(pg: Server, db: str) -> tuple[str, dict[str, str]]:
    """auditsql installed with roles of its own, two tables attached and
    written."""
    roles = {r: unique_name(f"auditsql_r_{r[:3]}") for r in ROLES}
    execute(db, "CREATE TABLE orders (id int PRIMARY KEY, s text);"
                " CREATE TABLE parts (id int PRIMARY KEY) PARTITION BY RANGE (id);"
                " CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (10)")
    ok("install", "--dsn", db, *(a for r in ROLES for a in (f"--{r}-role", roles[r])))
    ok("attach", "--dsn", db, "orders", "parts")
    execute(db, "INSERT INTO orders VALUES (1, 'a'); INSERT INTO parts VALUES (1)")
    yield db, roles
    for role in roles.values():
        drop_role(pg, role)


def state(dsn: str) -> tuple[object, ...]:
    """What uninstall changes, to compare before and after a refusal."""
    return (audit_triggers_anywhere(dsn), schema_exists(dsn, "audit"),
            scalar(dsn, "SELECT count(*) FROM pg_event_trigger"),
            scalar(dsn, "SELECT count(*) FROM pg_proc WHERE pronamespace ="
                        " to_regnamespace('audit')"),
            query(dsn, "SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'auditsql\\_r\\_%'"
                       " ORDER BY 1"))


def test_uninstall_keeps_the_log(installed: tuple[str, dict[str, str]]) -> None:
    db, roles = installed
    events = scalar(db, "SELECT count(*) FROM audit.events")
    res = ok("uninstall", "--dsn", db)
    assert res.stderr.splitlines()[-1] == (
        "auditsql uninstalled from schema audit; its log kept in schema audit,"
        " no longer guarded")
    assert "no longer audited: public.orders" in res.stderr
    for role in roles.values():
        assert f"dropped role {role}" in res.stderr
        assert not role_exists(db, role)
    # the log stays, with the uninstall as its last event
    assert scalar(db, "SELECT count(*) FROM audit.events") == events + 1
    last = query(db, "SELECT action, after -> 'tables' FROM audit.events ORDER BY id DESC LIMIT 1")
    assert last == [("uninstalled", ["public.orders", "public.parts"])]
    assert scalar(db, "SELECT nspowner::regrole::text FROM pg_namespace"
                      " WHERE nspname = 'audit'") == "postgres"
    # and nothing of auditsql's machinery
    assert audit_triggers_anywhere(db) == []
    assert scalar(db, "SELECT count(*) FROM pg_event_trigger") == 0
    assert not schema_exists(db, "auditsql_guard_audit")
    assert scalar(db, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'audit'::regnamespace") == 0
    assert scalar(db, "SELECT count(*) FROM pg_class WHERE relnamespace = 'audit'::regnamespace"
                      " AND relkind = 'v'") == 0
    execute(db, "INSERT INTO orders VALUES (2, 'b'); TRUNCATE parts")
    assert scalar(db, "SELECT count(*) FROM audit.events") == events + 1
    # no longer an installation
    verified = run("verify", "--dsn", db)
    assert verified.code == 1 and "not installed" in verified.stdout
    error_line(run("uninstall", "--dsn", db), 1, "not installed")


def test_uninstall_with_the_data(installed: tuple[str, dict[str, str]]) -> None:
    db, roles = installed
    ok("uninstall", "--dsn", db, "--drop-data", "--confirm", "audit")
    assert not schema_exists(db, "audit")
    assert audit_triggers_anywhere(db) == []
    assert not any(role_exists(db, r) for r in roles.values())


@pytest.mark.parametrize(("args", "needle"), [
    (("--drop-data",), "--confirm audit"),
    (("--drop-data", "--confirm", "Audit"), "is not the schema's name"),
    (("--confirm", "audit"), "--confirm goes with --drop-data"),
])
def test_a_drop_unconfirmed_changes_nothing(installed: tuple[str, dict[str, str]],
                                           args: tuple[str, ...], needle: str) -> None:
    db, _ = installed
    before = state(db)
    error_line(run("uninstall", "--dsn", db, *args), 2, needle)
    assert state(db) == before


def test_on_a_terminal_the_drop_asks_for_the_schemas_name(
        installed: tuple[str, dict[str, str]]) -> None:
    db, _ = installed
    before = state(db)
    for answer, code in (("nope", 2), ("audit", 0)):
        main, child = pty.openpty()
        process = subprocess.Popen([*cli_command(), "uninstall", "--dsn", db, "--drop-data"],
                                   stdin=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=cli_env(), start_new_session=True)
        os.close(child)
        os.write(main, f"{answer}\n".encode())
        _, stderr = process.communicate(timeout=60)
        os.close(main)
        assert process.returncode == code, stderr.decode()
        if code:
            assert state(db) == before
    assert not schema_exists(db, "audit")


def test_roles_another_database_uses_are_kept(
        pg: Server, installed: tuple[str, dict[str, str]]) -> None:
    db, roles = installed
    other = unique_name("auditsql_t")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
        sql.Identifier(other)))
    try:
        execute(pg.dsn(other), f'CREATE TABLE kept (id int); GRANT SELECT ON kept TO "{roles["reader"]}"')
        res = ok("uninstall", "--dsn", db)
        assert f"warning: role {roles['reader']} kept:" in res.stderr
        assert role_exists(db, roles["reader"]) and not role_exists(db, roles["owner"])
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))


def test_only_a_superuser_with_event_triggers(
        pg: Server, installed: tuple[str, dict[str, str]], make_role: MakeRole) -> None:
    db, roles = installed
    member = make_role()
    execute(db, f'GRANT "{roles["owner"]}" TO "{member}"')
    before = state(db)
    error_line(run("uninstall", "--dsn", pg.dsn(dbname(db), user=member)), 1,
               "may not uninstall auditsql", "a superuser may")
    assert state(db) == before


def test_the_kept_log_is_the_uninstalling_roles_and_a_new_install_needs_another_schema(
        installed: tuple[str, dict[str, str]]) -> None:
    """README: "The log stays, as plain tables owned by the role that
    uninstalls [...] (a new install needs another schema)": after a
    superuser's uninstall every table of the log is that superuser's (none
    is the owner role's, which is gone); installing into the kept schema
    fails, saying to choose another, and leaves the log as it was; another
    schema installs."""
    db, roles = installed
    ok("uninstall", "--dsn", db)
    me = scalar(db, "SELECT current_user::text")
    owners = query(db, "SELECT c.relname::text, c.relowner::regrole::text FROM pg_class AS c"
                       " WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind IN ('r', 'p')"
                       " ORDER BY 1")
    assert ("events", me) in owners
    assert [(name, owner) for name, owner in owners if owner != me] == []
    kept = query(db, "SELECT id, action FROM audit.events ORDER BY id")
    error_line(run("install", "--dsn", db), 1, "schema audit already exists",
               "choose another schema with --schema")
    assert query(db, "SELECT id, action FROM audit.events ORDER BY id") == kept
    assert scalar(db, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'audit'::regnamespace") == 0
    assert scalar(db, "SELECT count(*) FROM pg_event_trigger") == 0
    ok("install", "--dsn", db, "--schema", "audit_next",
       *(a for r in ROLES for a in (f"--{r}-role", roles[r])))
    assert scalar(db, "SELECT version FROM audit_next.installation") is not None
