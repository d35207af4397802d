"""Failures a user meets first: bad connection strings, where the DSN comes
from, and missing privileges. Always through the real console script."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tests.cli.clitools import (
    VERSION,
    audit_triggers_anywhere,
    dbname,
    error_line,
    execute,
    ok,
    query,
    role_exists,
    run,
    run_parallel,
    scalar,
    schema_exists,
    tracked,
    usage_error,
)
from tests.harness import pgcluster
from tests.harness.roles import MakeRole
from tests.harness.server import Server

COMMANDS = [
    ("install",),
    ("attach", "orders"),
    ("detach", "orders"),
    ("status",),
    ("status", "--json"),
]


def sub(*args: str, env: dict[str, str] | None = None):
    """The console script, in a child process."""
    return run(*args, env=env, subprocess_only=True)


# --------------------------------------------------------------------------
# Connection strings
# --------------------------------------------------------------------------


def bad_dsns(pg: Server) -> dict[str, str]:
    return {
        "closed-tcp-port": f"host=127.0.0.1 port={pgcluster.free_port()} user=x dbname=x "
                           "connect_timeout=5",
        "no-such-socket-dir": "host=/nonexistent/auditsql-socket port=5432 user=x dbname=x",
        "unknown-user": pg.dsn("postgres", user="auditsql_no_such_role"),
        "unknown-database": pg.dsn("auditsql_no_such_db"),
        "bad-sslmode": pg.dsn("postgres", sslmode="bogus"),
        "uri-unknown-host": "postgresql://u@auditsql-no-such-host.invalid/x?connect_timeout=5",
    }


def test_bad_dsn(pg: Server) -> None:
    """Every command, every kind of unreachable database: exit 2, one line."""
    cases = [(name, ("status",), dsn) for name, dsn in bad_dsns(pg).items()]
    cases += [(f"{' '.join(c)}: unknown-database", c, bad_dsns(pg)["unknown-database"])
              for c in COMMANDS if c != ("status",)]
    for name, command, dsn in cases:
        res = run(*command, "--dsn", dsn)
        try:
            error_line(res, 2, "connect")
            assert res.stdout == ""
        except AssertionError as exc:
            raise AssertionError(f"case {name}: {exc}") from None


@pytest.mark.parametrize(
    "dsn",
    [
        pytest.param("garbage"),
        pytest.param("postgresql://[::1"),
        pytest.param("host='unterminated"),
        pytest.param("foo=bar"),
    ],
)
def test_malformed_dsn(dsn: str) -> None:
    res = run("status", "--dsn", dsn)
    error_line(res, 2, "connection string")
    assert res.stdout == ""


def test_malformed_dsn_without_the_blank_line(pg: Server) -> None:
    """What still holds despite the bug above: exit 2, `error:` first, no traceback."""
    res = run("status", "--dsn", "garbage")
    assert res.code == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: invalid connection string")
    assert [line for line in res.stderr.splitlines() if line.strip()] == [
        res.stderr.splitlines()[0]
    ]


def test_role_that_cannot_log_in(pg: Server, role_names) -> None:
    role = role_names()
    pg.admin().execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    res = run("status", "--dsn", pg.dsn("postgres", user=role))
    error_line(res, 2, "connect", role)


def test_wrong_password(pg: Server, make_role: MakeRole) -> None:
    role = make_role()
    admin = pg.admin()
    admin.execute(sql.SQL("DO $$ BEGIN CREATE ROLE {} NOLOGIN; "
                          "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
                  .format(sql.Identifier(pgcluster.PASSWORD_ROLE)))
    admin.execute(sql.SQL("GRANT {} TO {}").format(
        sql.Identifier(pgcluster.PASSWORD_ROLE), sql.Identifier(role)))
    dsn = pg.dsn("postgres", user=role, password="wrong-password", host="127.0.0.1")
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError:
        pass
    else:
        pytest.skip("the test server does not check passwords (trust authentication)")
    error_line(run("status", "--dsn", dsn), 2, "connect")


# --------------------------------------------------------------------------
# Where the DSN comes from
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(module_db: str) -> str:
    execute(module_db, "CREATE TABLE orders (id int PRIMARY KEY)")
    ok("install", "--dsn", module_db)
    return module_db


def test_dsn_from_environment(installed: str) -> None:
    res = ok("status", env={"AUDITSQL_DSN": installed}, subprocess_only=True)
    assert f"auditsql {VERSION}" in res.stdout
    ok("attach", "orders", env={"AUDITSQL_DSN": installed})
    assert tracked(installed) == {"public.orders"}
    ok("detach", "orders", env={"AUDITSQL_DSN": installed})
    assert tracked(installed) == set()


def test_dsn_option_beats_environment(installed: str) -> None:
    res = ok("status", "--dsn", installed, env={"AUDITSQL_DSN": "garbage"})
    assert VERSION in res.stdout
    error_line(run("status", env={"AUDITSQL_DSN": "host=/nonexistent port=1"}), 2, "connect")


def test_missing_dsn_is_a_usage_error() -> None:
    for command in COMMANDS:
        usage_error(run(*command), "--dsn")


def test_failures_of_the_real_process(pg: Server) -> None:
    """The same failures from the console script itself, run side by side."""
    bad = bad_dsns(pg)
    results = run_parallel([
        ("status", "--dsn", bad["unknown-user"]),
        ("attach", "--dsn", bad["closed-tcp-port"], "orders"),
        ("install",),
    ])
    error_line(results[0], 2, "connect")
    error_line(results[1], 2, "connect")
    usage_error(results[2], "--dsn")


# --------------------------------------------------------------------------
# Privileges
# --------------------------------------------------------------------------


def test_install_without_createrole(pg: Server, db: str, make_role: MakeRole, role_names) -> None:
    role = make_role()
    owner, reader = role_names(), role_names()
    res = sub("install", "--dsn", pg.dsn(dbname(db), user=role), "--schema", "denied",
              "--owner-role", owner, "--reader-role", reader)
    error_line(res, 1, role, "CREATEROLE")
    assert not schema_exists(db, "denied")
    assert not role_exists(db, owner) and not role_exists(db, reader)


def test_install_without_create_on_database(
    pg: Server, db: str, make_role: MakeRole, role_names
) -> None:
    role = make_role("CREATEROLE")
    owner, reader = role_names(), role_names()
    res = run("install", "--dsn", pg.dsn(dbname(db), user=role), "--schema", "denied",
              "--owner-role", owner, "--reader-role", reader)
    error_line(res, 1, role, "create schemas")
    assert not schema_exists(db, "denied")
    assert not role_exists(db, owner) and not role_exists(db, reader)


def test_install_as_createrole_with_create_on_database(
    pg: Server, db: str, make_role: MakeRole, role_names
) -> None:
    role = make_role("CREATEROLE")
    grant = sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
        sql.Identifier(dbname(db)), sql.Identifier(role)).as_string()
    execute(db, grant)
    try:
        owner, reader = role_names(), role_names()
        dsn = pg.dsn(dbname(db), user=role)
        ok("install", "--dsn", dsn, "--schema", "delegated", "--owner-role", owner,
           "--reader-role", reader)
        assert scalar(db, "SELECT nspowner::regrole::text FROM pg_namespace "
                          "WHERE nspname = 'delegated'") == owner
        assert VERSION in ok("status", "--dsn", dsn, "--schema", "delegated").stdout
    finally:
        # drop_role (tests/harness/roles.py) cannot see database-level grants (their
        # pg_shdepend rows have dbid 0), so take this one back here.
        execute(db, grant.replace("GRANT", "REVOKE", 1).replace(" TO ", " FROM ", 1))


@pytest.fixture
def foreign_table(installed_db: str) -> str:
    """A database with auditsql installed and a table owned by the superuser."""
    execute(installed_db,
            "CREATE TABLE theirs (id int PRIMARY KEY); CREATE TABLE mine (id int PRIMARY KEY)")
    return installed_db


def nothing_attached(dsn: str) -> None:
    assert tracked(dsn) == set()
    assert audit_triggers_anywhere(dsn) == []


@pytest.mark.parametrize(
    ("grants", "needle"),
    [
        ("", "may not read the audit schema"),
        ("GRANT auditsql_reader TO {role}", "must be a member of auditsql_operator"),
        ("GRANT auditsql_operator TO {role}", "may not attach public.theirs: only its owner"),
        ("GRANT auditsql_operator TO {role}; GRANT TRIGGER ON theirs TO {role}",
         "may not attach public.theirs: only its owner"),
    ],
    ids=["no-grants", "reader", "operator", "with-trigger-privilege"],
)
def test_attach_someone_elses_table(
    pg: Server, foreign_table: str, make_role: MakeRole, grants: str, needle: str
) -> None:
    """`mine` is the role's own table, `theirs` is not: nothing gets attached."""
    role = make_role()
    ident = sql.Identifier(role).as_string()
    execute(foreign_table, f"ALTER TABLE mine OWNER TO {ident}")
    if grants:
        execute(foreign_table, grants.format(role=ident))
    dsn = pg.dsn(dbname(foreign_table), user=role)
    error_line(run("attach", "--dsn", dsn, "mine", "theirs"), 1, needle)
    nothing_attached(foreign_table)


def test_attach_own_table_as_operator(
    pg: Server, foreign_table: str, make_role: MakeRole
) -> None:
    role = make_role()
    ident = sql.Identifier(role).as_string()
    execute(foreign_table, f"GRANT auditsql_operator TO {ident}; ALTER TABLE mine OWNER TO {ident}")
    dsn = pg.dsn(dbname(foreign_table), user=role)
    ok("attach", "--dsn", dsn, "mine")
    assert tracked(foreign_table) == {"public.mine"}
    ok("detach", "--dsn", dsn, "mine")
    nothing_attached(foreign_table)


# --------------------------------------------------------------------------
# Invalid values: exit 2 and nothing changed, whichever command is given them
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valued(module_db: str) -> str:
    """auditsql installed with policy saas, users attached with an on-change
    policy and nopk (no primary key) not attached."""
    execute(module_db, "CREATE TABLE users (id int PRIMARY KEY, role text, name text);"
                       "CREATE TABLE nopk (a int, b int)")
    ok("install", "--dsn", module_db, "--retention", "saas")
    ok("attach", "--dsn", module_db, "users", "--on-change", "role=role_changed")
    return module_db


def audit_state(dsn: str) -> tuple[object, ...]:
    """Everything an invalid value could have changed."""
    return (
        query(dsn, "SELECT relid::regclass::text, id_columns, capture, exclude, redact,"
                   " on_change, require_actor FROM audit.tables ORDER BY 1"),
        query(dsn, "SELECT admin_roles, require_actor FROM audit.settings"),
        query(dsn, "SELECT policy, keep::text FROM audit.retention"),
        query(dsn, "SELECT entity_type, entity_id FROM audit.legal_holds ORDER BY 1, 2"),
        query(dsn, "SELECT tgrelid::regclass::text, tgname, tgenabled::text FROM pg_trigger"
                   " WHERE tgname LIKE 'auditsql%' ORDER BY 1, 2"),
        query(dsn, "SELECT name FROM audit.event_partitions() ORDER BY 1"),
        scalar(dsn, "SELECT count(*) FROM audit.events"),
    )


# (command line, words of the one-line error) for values the library refuses;
# the server's refusals (invalid_parameter_value) are among them.
INVALID_VALUES = [
    (("attach", "users", "--on-change", "role=Role-Changed"), "invalid --on-change action"),
    (("attach", "users", "--on-change", "role=created"), "written by auditsql itself"),
    (("attach", "users", "--on-change", "role=legal_hold_placed"), "written by auditsql itself"),
    (("attach", "users", "--on-change", "role=" + "a" * 64), "invalid --on-change action"),
    (("attach", "users", "--on-change", "role"), "COLUMN=ACTION"),
    (("attach", "users", "--on-change", "role=a", "--on-change", "role=b"), "twice"),
    (("attach", "users", "--redact", "id"), "cannot be redacted"),
    (("attach", "users", "--exclude", "id"), "cannot be excluded"),
    (("attach", "users", "--exclude", "name", "--redact", "name"), "both excluded and redacted"),
    (("attach", "users", "--exclude", "role"), "excluded column"),
    (("attach", "nopk", "--id-columns", "a,a"), "twice"),
    (("attach", "nopk", "--id-columns", "a,,b"), "--id-columns"),
    (("install", "--admin-actor-roles", "dba,,x"), "--admin-actor-roles"),
    (("install", "--retention", "forever"), "unknown retention policy"),
    (("install", "--retention", "-1 years"), "longer than zero"),
    (("retention", "set", "forever"), "unknown retention policy"),
    (("retention", "set", "0 days"), "longer than zero"),
    (("retention", "hold", "public.users", "1", "--reason", ""), "reason"),
    (("retention", "hold", "public.users", "1", "--reason", "  "), "reason"),
    (("retention", "hold", "public.users", "1", "--reason", "x" * 1001), "at most 1000"),
    (("retention", "hold", "public.users", "", "--reason", "case"), "entity id"),
    (("retention", "release", "public.users", "1", "--reason", "x" * 1001), "at most 1000"),
    (("retention", "schedule", "--cron", "bogus"), "invalid schedule"),
    (("retention", "schedule", "--cron", "* * * *\n*"), "schedule"),
    (("retention", "schedule", "--months-ahead", "121"), "months ahead"),
    (("retention", "run", "--months-ahead", "-1"), "months ahead"),
]

# Values typer itself refuses (its own usage message names the option).
USAGE_VALUES = [
    (("attach", "users", "--capture", "bulk"), "--capture"),
    (("retention", "run", "--months-ahead", "soon"), "--months-ahead"),
    (("install", "--dry-run", "--server-version", "13"), "--server-version"),
]


@pytest.mark.parametrize(("args", "needle"), INVALID_VALUES,
                         ids=[" ".join(a)[:60] for a, _ in INVALID_VALUES])
def test_an_invalid_value_exits_2_and_changes_nothing(valued: str, args: tuple[str, ...],
                                                      needle: str) -> None:
    before = audit_state(valued)
    error_line(run(*args, "--dsn", valued), 2, needle)
    assert audit_state(valued) == before


@pytest.mark.parametrize(("args", "option"), USAGE_VALUES,
                         ids=[" ".join(a) for a, _ in USAGE_VALUES])
def test_a_value_typer_refuses_exits_2_and_changes_nothing(valued: str, args: tuple[str, ...],
                                                           option: str) -> None:
    before = audit_state(valued)
    usage_error(run(*args, "--dsn", valued), option)
    assert audit_state(valued) == before
