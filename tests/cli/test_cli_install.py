"""`auditsql install` end to end, mostly on a fresh database per test."""

from __future__ import annotations

import pytest
from psycopg import sql

from auditsql.render import Settings, install_sql
from clitools import (
    VERSION,
    error_line,
    execute,
    module_db,  # noqa: F401  (fixture)
    ok,
    query,
    role_exists,
    role_names,  # noqa: F401  (fixture)
    run,
    scalar,
    schema_exists,
)
from conftest import Server

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
    if res.code == 0:
        assert schema_exists(db, schema)
    else:
        error_line(res, 2)


@pytest.mark.parametrize("option", ["--schema", "--owner-role"])
def test_dollar_quote_in_name(db: str, role_names, option: str) -> None:
    names = {"--schema": "dollar", "--owner-role": role_names(), "--reader-role": role_names()}
    names[option] = "a$fn$b" if option == "--schema" else role_names(suffix="$preflight$")
    res = run("install", "--dsn", db, *(x for kv in names.items() for x in kv))
    if res.code == 0:
        assert schema_exists(db, names["--schema"])
    else:
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
    assert settings == {"schema": "kept", "owner": owner, "reader": reader, "writer": writer,
                        "admin": admin, "operator": "auditsql_operator", "event_trigger": True}
    assert role_exists(db, admin)
