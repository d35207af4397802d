"""`auditsql install` end to end, mostly on a fresh database per test."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator

import pytest
from psycopg import sql

from auditsql.render import Settings, install_sql
from tests.cli.clitools import (
    VERSION,
    dbname,
    error_line,
    execute,
    ok,
    query,
    role_exists,
    run,
    scalar,
    schema_exists,
    usage_error,
)
from tests.harness.roles import MakeRole
from tests.harness.server import Server

HOSTILE = 'x"; DROP TABLE canary; --'


def audit_objects(dsn: str, schema: str) -> list[tuple[str, str]]:
    """(kind, name) of every relation, function and trigger in *schema*."""
    return query(
        dsn,
        """
        SELECT 'rel:' || c.relkind::text, c.relname::text FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s
        UNION ALL
        SELECT 'fn'::text, p.oid::regprocedure::text FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(s)s
        UNION ALL
        SELECT 'trigger', t.tgrelid::regclass::text || ' ' || t.tgname FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %(s)s AND NOT t.tgisinternal
        ORDER BY 1, 2
        """,
        {"s": schema},
    )


def user_objects(dsn: str) -> int:
    """Number of relations and functions outside the system schemas."""
    return scalar(
        dsn,
        """
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast'))
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
             + (SELECT count(*) FROM pg_namespace
                WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public')
                  AND nspname NOT LIKE 'pg\\_temp\\_%%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%%')
        """,
    )


def test_fresh_install_then_idempotent(db: str) -> None:
    res = ok("install", "--dsn", db, subprocess_only=True)
    assert VERSION in res.stderr + res.stdout
    assert scalar(db, "SELECT version FROM audit.installation") == VERSION
    objects = audit_objects(db, "audit")
    assert ("rel:p", "events") in objects and ("rel:r", "tables") in objects

    again = ok("install", "--dsn", db)
    assert VERSION in again.stderr + again.stdout
    assert audit_objects(db, "audit") == objects
    assert scalar(db, "SELECT count(*) FROM audit.installation") == 1


def test_dry_run_prints_sql_and_changes_nothing(db: str, role_names) -> None:
    owner, reader = role_names(), role_names()
    before = user_objects(db)
    res = ok(
        "install", "--dsn", db, "--dry-run", "--schema", "dry",
        "--owner-role", owner, "--reader-role", reader,
    )
    assert 'CREATE TABLE IF NOT EXISTS "dry".events' in res.stdout
    assert user_objects(db) == before
    assert not schema_exists(db, "dry")
    assert not role_exists(db, owner) and not role_exists(db, reader)


def test_dry_run_output_is_the_install_script(pg: Server, db: str) -> None:
    res = ok("install", "--dsn", db, "--dry-run")
    expected = install_sql(Settings(), pg.version_num)
    assert res.stdout == f"BEGIN;\n{expected}COMMIT;\n"


def test_dry_run_output_is_verbatim_for_any_schema(pg: Server, db: str) -> None:
    settings = Settings(schema=":smile: x y")
    res = ok("install", "--dsn", db, "--dry-run", "--schema", settings.schema)
    assert res.stdout == f"BEGIN;\n{install_sql(settings, pg.version_num)}COMMIT;\n"


def test_install_in_other_schema(db: str) -> None:
    ok("install", "--dsn", db, "--schema", "other")
    assert schema_exists(db, "other")
    assert not schema_exists(db, "audit")
    assert scalar(db, "SELECT version FROM other.installation") == VERSION
    status = ok("status", "--dsn", db, "--schema", "other")
    assert "other" in status.stdout
    env = ok("status", "--dsn", db, env={"AUDITSQL_SCHEMA": "other"})
    assert VERSION in env.stdout
    error_line(run("status", "--dsn", db), 1, "not installed", "auditsql install")


def test_hostile_schema_name_is_an_identifier(db: str, role_names) -> None:
    execute(db, "CREATE TABLE canary (x int); INSERT INTO canary VALUES (1);"
                "CREATE TABLE orders (id int PRIMARY KEY)")
    owner, reader = role_names(), role_names()
    res = run(
        "install", "--dsn", db, "--schema", HOSTILE, "--owner-role", owner,
        "--reader-role", reader,
    )
    assert scalar(db, "SELECT count(*) FROM canary") == 1
    if res.code != 0:  # refusing the name is fine too, as a usage error
        error_line(res, 2)
        assert not schema_exists(db, HOSTILE)
        return
    assert schema_exists(db, HOSTILE)
    ok("attach", "--dsn", db, "--schema", HOSTILE, "orders")
    execute(db, "INSERT INTO orders VALUES (1)")
    events = query(
        db,
        sql.SQL("SELECT action, entity_id FROM {}.events WHERE entity_type = 'public.orders'"
                " ORDER BY id")
        .format(sql.Identifier(HOSTILE)).as_string(),
    )
    assert events == [("attached", None), ("created", "1")]
    assert VERSION in ok("status", "--dsn", db, "--schema", HOSTILE).stdout
    assert scalar(db, "SELECT count(*) FROM canary") == 1


def test_newline_in_schema_name_cannot_inject(db: str, role_names) -> None:
    execute(db, "CREATE TABLE canary (x int)")
    schema = "x\nDROP TABLE canary;\n--"
    res = run("install", "--dsn", db, "--schema", schema,
              "--owner-role", role_names(), "--reader-role", role_names())
    assert scalar(db, "SELECT to_regclass('public.canary') IS NOT NULL"), "canary dropped"
    # README: "Schema and role names may not contain control characters".
    error_line(res, 2)
    assert not schema_exists(db, schema)


@pytest.mark.parametrize("option", ["--schema", "--owner-role"])
def test_dollar_quote_in_name(db: str, role_names, option: str) -> None:
    names = {"--schema": "dollar", "--owner-role": role_names(), "--reader-role": role_names()}
    names[option] = "a$fn$b" if option == "--schema" else role_names(suffix="$preflight$")
    res = run("install", "--dsn", db, *(x for kv in names.items() for x in kv))
    # README: "Schema and role names may not contain ... `$`".
    error_line(res, 2)
    assert not schema_exists(db, names["--schema"])


def test_hostile_role_names_are_identifiers(db: str, role_names) -> None:
    execute(db, "CREATE TABLE canary (x int)")
    owner = role_names(suffix='"; DROP TABLE canary; --')
    reader = role_names(suffix="'; DROP TABLE canary; --")
    res = run("install", "--dsn", db, "--owner-role", owner, "--reader-role", reader,
              "--schema", "hostile_roles")
    assert scalar(db, "SELECT to_regclass('canary') IS NOT NULL")
    if res.code != 0:  # refusing the names is fine too, as a usage error
        error_line(res, 2)
        return
    assert role_exists(db, owner) and role_exists(db, reader)
    assert scalar(
        db, "SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
            "WHERE n.nspname = 'hostile_roles'"
    ) == owner


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64,
        "é" * 32,  # 32 characters, 64 bytes
        "",
    ],
    ids=["64-ascii", "64-bytes-multibyte", "empty"],
)
@pytest.mark.parametrize("option", ["--schema", "--owner-role", "--reader-role"])
def test_invalid_names_are_usage_errors(module_db: str, option: str, name: str) -> None:
    res = run("install", "--dsn", module_db, option, name)
    line = error_line(res, 2)
    if name:
        assert "63 bytes" in line
    assert user_objects(module_db) == 0


def test_longest_valid_schema_name(db: str) -> None:
    name = "é" * 31 + "s"  # 63 bytes
    ok("install", "--dsn", db, "--schema", name)
    assert schema_exists(db, name)


def test_schema_owned_by_someone_else_is_refused(db: str) -> None:
    res = run("install", "--dsn", db, "--schema", "public")
    error_line(res, 1, "public", "--schema")
    assert not schema_exists(db, "audit")


def _psql(pg: Server) -> str:
    """A psql client: the test cluster's own, else one on PATH."""
    import shutil

    if pg.cluster is not None and (pg.cluster.bindir / "psql").exists():
        return str(pg.cluster.bindir / "psql")
    found = shutil.which("psql")
    if found is None:
        pytest.skip("no psql client")
    return found


def test_dry_run_output_piped_to_psql_installs_the_same(pg: Server, db: str, role_names) -> None:
    import subprocess

    owner, reader = role_names(), role_names()
    script = ok(
        "install", "--dsn", db, "--dry-run", "--owner-role", owner, "--reader-role", reader
    ).stdout
    subprocess.run(
        [_psql(pg), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"],
        input=script, text=True, check=True, capture_output=True,
    )
    assert scalar(db, "SELECT relowner::regrole::text FROM pg_class "
                      "WHERE oid = 'audit.events'::regclass") == owner


def test_upgrade_needs_an_installation(db: str) -> None:
    res = run("upgrade", "--dsn", db, subprocess_only=True)
    error_line(res, 1, "not installed", "auditsql install")
    assert not schema_exists(db, "audit")


def test_upgrade_keeps_the_installation_settings(db: str, role_names) -> None:
    owner, reader, writer, admin = role_names(), role_names(), role_names(), role_names()
    ok("install", "--dsn", db, "--schema", "kept", "--owner-role", owner, "--reader-role", reader,
       "--writer-role", writer, "--admin-role", admin)
    res = ok("upgrade", "--dsn", db, "--schema", "kept")
    assert res.stderr == f"auditsql {VERSION} in schema kept is up to date\n"
    assert scalar(db, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'kept'") \
        == owner
    assert scalar(db, "SELECT count(*) FROM kept.installation") == 1
    settings = scalar(db, "SELECT settings FROM kept.installation")
    # The roles this install created, which uninstall may drop: the four
    # named here (the operator role is the default one, which other tests'
    # installs may have created first).
    created = set(settings.pop("created_roles"))
    assert {owner, reader, writer, admin} <= created <= {owner, reader, writer, admin,
                                                         "auditsql_operator"}
    assert settings == {"schema": "kept", "owner": owner, "reader": reader, "writer": writer,
                        "admin": admin, "operator": "auditsql_operator", "event_trigger": True}
    assert role_exists(db, admin)


# --------------------------------------------------------------------------
# install --dry-run without a database
# --------------------------------------------------------------------------


def _feed(pg: Server, dsn: str, script: str) -> tuple[bool, str]:
    """Run a script as psql runs a file, stopping at the first error:
    (succeeded, what the client printed on stderr). psql when there is one,
    else psycopg sending the whole script at once (it has its own BEGIN and
    COMMIT)."""
    import shutil
    import subprocess

    import psycopg

    client = (str(pg.cluster.bindir / "psql")
              if pg.cluster is not None and (pg.cluster.bindir / "psql").exists()
              else shutil.which("psql"))
    if client is not None:
        done = subprocess.run([client, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
                              input=script, text=True, capture_output=True, check=False)
        return done.returncode == 0, done.stderr
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(script.encode())
    except psycopg.Error as exc:
        return False, str(exc)
    return True, ""


@functools.cache
def _offline(*args: str) -> str:
    """`auditsql install --dry-run` with no DSN anywhere: the script (the
    console script's, each distinct command line run once)."""
    res = ok("install", "--dry-run", *args, subprocess_only=True)
    assert res.stderr == ""
    return res.stdout


def test_dry_run_without_a_dsn_renders_without_a_server() -> None:
    """No DSN, no PG* variables (scrubbed): the default settings, PostgreSQL 14,
    a superuser's script; each option changes just what it says."""
    assert _offline() == f"BEGIN;\n{install_sql(Settings(), 140000)}COMMIT;\n"
    assert run("install", "--dry-run").stdout == _offline()  # in process too
    assert _offline("--server-version", "16") == \
        f"BEGIN;\n{install_sql(Settings(), 160000)}COMMIT;\n"
    plain = _offline("--no-event-triggers", "--schema", "other")
    assert plain == f"BEGIN;\n{install_sql(Settings(schema='other'), 140000, event_trigger=False)}COMMIT;\n"
    assert "CREATE EVENT TRIGGER" in _offline() and "CREATE EVENT TRIGGER" not in plain
    assert "pg_input_is_valid" in _offline("--server-version", "16")
    assert "pg_input_is_valid" not in _offline()
    tail = _offline("--retention", "saas", "--admin-actor-roles", "dba", "--strict")
    assert tail.endswith("SELECT \"audit\".set_retention('saas');\n"
                         "SELECT \"audit\".configure('{dba}'::text[], true::boolean);\nCOMMIT;\n")


def test_dry_run_without_a_dsn_installs_cleanly(pg: Server, db: str) -> None:
    """The default script (for PostgreSQL 14) and the one for this server's
    version both install through psql. On a server newer than 14 the default
    one's inet_or_null is not the one this server gets, so verify fails
    until upgrade restores it (and says so)."""
    own = str(pg.version_num // 10000)
    scripts = {"14": _offline("--retention", "saas"),
               own: _offline("--retention", "saas", "--server-version", own)}
    for major, script in scripts.items():
        execute(db, "DROP SCHEMA IF EXISTS audit CASCADE")
        succeeded, stderr = _feed(pg, db, script)
        assert succeeded, f"script for {major}: {stderr}"
        assert scalar(db, "SELECT version FROM audit.installation") == VERSION
        objects = ok("status", "--dsn", db).stdout.splitlines()[2]
        assert re.fullmatch(r"objects: [0-9]+ installed" if major == own
                            or pg.version_num < 160000
                            else r"objects: [0-9]+ installed, 1 outdated", objects), objects
        upgraded = ok("upgrade", "--dsn", db).stderr
        if major == own or pg.version_num < 160000:
            assert upgraded == f"auditsql {VERSION} in schema audit is up to date\n"
        else:
            assert upgraded.splitlines()[0] == (
                "restored function audit.inet_or_null(text)"
                " (was outdated: body differs from this version's)")
        assert run("verify", "--dsn", db).code == 0


@contextlib.contextmanager
def delegated(pg: Server, db: str, make_role: MakeRole) -> Iterator[tuple[str, str]]:
    """(name, DSN) of a login role with CREATEROLE and CREATE on *db*, no
    superuser: what a managed service gives. The database grant is taken
    back after (drop_role cannot see it)."""
    role = make_role("CREATEROLE")
    grant = sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
        sql.Identifier(dbname(db)), sql.Identifier(role)).as_string()
    execute(db, grant)
    try:
        yield role, pg.dsn(dbname(db), user=role)
    finally:
        execute(db, grant.replace("GRANT", "REVOKE", 1).replace(" TO ", " FROM ", 1))


def test_dry_run_without_event_triggers_is_for_a_role_that_is_no_superuser(
        pg: Server, db: str, make_role: MakeRole, role_names) -> None:
    with delegated(pg, db, make_role) as (_, dsn):
        owner, reader = role_names(), role_names()
        names = ("--owner-role", owner, "--reader-role", reader)
        succeeded, stderr = _feed(pg, dsn, _offline(*names))
        assert not succeeded and "--no-event-triggers" in stderr
        assert not schema_exists(db, "audit") and not role_exists(db, owner)
        succeeded, stderr = _feed(pg, dsn, _offline(*names, "--no-event-triggers"))
        assert succeeded, stderr
        assert scalar(db, "SELECT nspowner::regrole::text FROM pg_namespace "
                          "WHERE nspname = 'audit'") == owner
        assert scalar(db, "SELECT settings ->> 'event_trigger' FROM audit.installation") == "false"


def test_dry_run_with_a_dsn_is_the_script_for_that_role(
        pg: Server, db: str, make_role: MakeRole, role_names) -> None:
    """README: "`--dry-run` prints the SQL ...: with `--dsn`, the script for
    that server and role": a role that is no superuser gets no event
    triggers, and the script installs as that role."""
    with delegated(pg, db, make_role) as (_, dsn):
        settings = Settings(**{k: role_names() for k in ("owner", "reader", "writer", "admin",
                                                          "operator")})
        names = [x for k in ("owner", "reader", "writer", "admin", "operator")
                 for x in (f"--{k}-role", getattr(settings, k))]
        script = ok("install", "--dsn", dsn, "--dry-run", *names).stdout
        assert script == f"BEGIN;\n{install_sql(settings, pg.version_num, event_trigger=False)}" \
                         "COMMIT;\n"
        assert "CREATE EVENT TRIGGER" in ok("install", "--dsn", db, "--dry-run", *names).stdout
        succeeded, stderr = _feed(pg, dsn, script)
        assert succeeded, stderr


def test_a_role_that_is_no_superuser_is_made_a_member(
        pg: Server, db: str, make_role: MakeRole, role_names) -> None:
    """README: "A role that installs without being a superuser is made a
    member of the owner, operator and admin roles" (and "no event triggers
    then")."""
    with delegated(pg, db, make_role) as (role, dsn):
        names = {"owner": role_names(), "operator": role_names(), "admin": role_names()}
        ok("install", "--dsn", dsn, *(x for k, v in names.items() for x in (f"--{k}-role", v)))
        for name in names.values():  # membership as auditsql itself checks it
            assert scalar(db, "SELECT pg_has_role(%s, %s, 'MEMBER')", (role, name)), name
        assert scalar(db, "SELECT count(*) FROM pg_event_trigger "
                          "WHERE evtname LIKE 'auditsql%%'") == 0


def test_the_role_that_installed_uninstalls_where_no_event_trigger_guards(
        pg: Server, db: str, make_role: MakeRole, role_names) -> None:
    """README: "Run it as a superuser, or, without event triggers, as the
    role that installed": a role that is no superuser, which has the rights
    of every role install made but the writer role, takes auditsql out,
    keeps the log as its own, and the roles go."""
    with delegated(pg, db, make_role) as (role, dsn):
        names = {k: role_names() for k in ("owner", "operator", "admin", "reader", "writer")}
        ok("install", "--dsn", dsn, *(x for k, v in names.items() for x in (f"--{k}-role", v)))
        execute(db, "SELECT audit.log_event('login', 'user', '1')")
        ok("uninstall", "--dsn", dsn)
        assert [name for name in names.values() if role_exists(db, name)] == []
        assert scalar(db, "SELECT tableowner FROM pg_tables"
                          " WHERE schemaname = 'audit' AND tablename = 'events'") == role
        assert scalar(db, "SELECT action FROM audit.events ORDER BY id DESC LIMIT 1") == "uninstalled"


@pytest.mark.parametrize("bad", ["a$b", "a\nb", "a\x7fb"], ids=["dollar", "newline", "del"])
@pytest.mark.parametrize("option", ["--schema", "--owner-role", "--reader-role", "--writer-role",
                                    "--admin-role", "--operator-role"])
def test_control_characters_and_dollar_are_refused(module_db: str, option: str,
                                                   bad: str) -> None:
    """README: "Schema and role names may not contain control characters or
    `$`": exit 2, nothing created, with a DSN or without."""
    error_line(run("install", "--dsn", module_db, option, bad), 2, "not allowed")
    assert user_objects(module_db) == 0 and not role_exists(module_db, bad)
    error_line(run("install", "--dry-run", option, bad), 2, "not allowed")


@pytest.mark.parametrize("value", ["13", "19", "abc", "", "16.2"])
def test_a_bad_server_version_is_a_usage_error(value: str) -> None:
    usage_error(run("install", "--dry-run", "--server-version", value, subprocess_only=True),
                "--server-version")


def test_rendering_options_need_a_dry_run_without_a_dsn(db: str) -> None:
    for args, option in ((("--dry-run", "--dsn", db, "--server-version", "16"), "--server-version"),
                         (("--dry-run", "--no-event-triggers", "--dsn", db), "--no-event-triggers"),
                         (("--server-version", "16"), "--server-version"),
                         (("--no-event-triggers",), "--no-event-triggers")):
        usage_error(run("install", *args), option)
    usage_error(run("install", "--dry-run", "--no-event-triggers",
                    env={"AUDITSQL_DSN": db}), "--no-event-triggers")
    usage_error(run("install"), "--dsn")
    assert not schema_exists(db, "audit")
