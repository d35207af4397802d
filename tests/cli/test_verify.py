"""`auditsql verify` end to end: every check passing, then each one failing
on purpose, on an installation made by a superuser (with event triggers) and
on one made by a role that is none (without). Exit codes, the JSON schema
(docs/verify.schema.json) and the JUnit report."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from psycopg import sql

from auditsql import checks
from auditsql.render import guard_schema_name
from tests.cli.clitools import (
    VERSION,
    dbname,
    error_line,
    execute,
    ok,
    run,
    scalar,
    usage_error,
)
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole, drop_role
from tests.harness.server import Server

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "verify.schema.json"
ALWAYS = [c for c in checks.REGISTRY
          if c not in ("tables.expected", "tables.all", "integrity.chain", "integrity.digests")]

SETUP = """
CREATE TABLE app.orders (id int PRIMARY KEY, note text);
CREATE TABLE app."Mixed Case" (id int PRIMARY KEY);
CREATE TABLE app.nopk (a int NOT NULL, b int NOT NULL, UNIQUE (a, b));
CREATE TABLE app.parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE app.parted_1 PARTITION OF app.parted FOR VALUES FROM (0) TO (100);
"""
ATTACH = (("app.orders", '"app"."Mixed Case"', "--capture", "statement"), ("app.parted",),
          ("app.nopk", "--id-columns", "a,b", "--capture", "statement"))


@dataclass(frozen=True)
class Install:
    """A database with auditsql installed and four tables attached."""

    kind: str  # superuser | plain
    dsn: str  # the role that installed
    su: str  # a superuser
    owner: str
    partition: str  # a monthly partition of the log


def _install(su_dsn: str, dsn: str, kind: str, *options: str) -> Install:
    execute(dsn, "CREATE SCHEMA app;" + SETUP)
    ok("install", "--dsn", dsn, "--retention", "saas", *options)
    for tables in ATTACH:
        ok("attach", "--dsn", dsn, *tables)
    owner = scalar(su_dsn, "SELECT nspowner::regrole::text FROM pg_namespace"
                           " WHERE nspname = 'audit'")
    partition = scalar(su_dsn, "SELECT 'audit.events_'"
                               " || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')")
    return Install(kind, dsn, su_dsn, owner, partition)


@pytest.fixture(scope="module")
def superuser_install(pg: Server) -> Iterator[Install]:
    name = unique_name("auditsql_cli")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0")
                       .format(sql.Identifier(name)))
    try:
        yield _install(pg.dsn(name), pg.dsn(name), "superuser")
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                           .format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def plain_install(pg: Server) -> Iterator[Install]:
    """Installed, and its tables owned, by a CREATEROLE role: no event triggers."""
    name = unique_name("auditsql_cli")
    installer = unique_name("auditsql_r_inst")
    roles = [unique_name(p) for p in ("auditsql_r_own", "auditsql_r_rd", "auditsql_r_adm",
                                      "auditsql_r_op", "auditsql_r_wr")]
    admin = pg.admin()
    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'auditsql-test'")
                  .format(sql.Identifier(installer)))
    admin.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
        sql.Identifier(name), sql.Identifier(installer)))
    try:
        yield _install(pg.dsn(name), pg.dsn(name, user=installer), "plain",
                       "--owner-role", roles[0], "--reader-role", roles[1],
                       "--admin-role", roles[2], "--operator-role", roles[3],
                       "--writer-role", roles[4])
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                           .format(sql.Identifier(name)))
        # Memberships the installer granted (the admin role in the reader
        # role) depend on it: the roles go first.
        for role in (*roles, installer):
            drop_role(pg, role)


@pytest.fixture(params=["superuser", "plain"])
def installed(request: pytest.FixtureRequest) -> Install:
    return request.getfixturevalue(f"{request.param}_install")


@functools.cache
def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def report(dsn: str, *args: str, code: int | None = None) -> dict:
    """The JSON report of `auditsql verify`, checked against the schema."""
    res = run("verify", "--dsn", dsn, "--json", *args)
    assert "Traceback" not in res.stderr, str(res)
    payload = json.loads(res.stdout)
    schema_validator().validate(payload)
    assert res.code == (1 if payload["result"] == "fail" else 0), str(res)
    if code is not None:
        assert res.code == code, str(res)
    return payload


def statuses(payload: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in payload["checks"]}


def by_id(payload: dict, check_id: str) -> dict:
    return next(c for c in payload["checks"] if c["id"] == check_id)


def pg_cron_loaded(dsn: str) -> bool:
    return "pg_cron" in str(scalar(dsn, "SHOW shared_preload_libraries"))


def sound(install: Install) -> dict:
    """Verify passes: every check passes, but for the event triggers of an
    installation made without a superuser, which warn, and the installing
    role, which is a member of the owner role there (it creates objects as
    the owner): it is listed, and warned of."""
    payload = report(install.dsn, code=0)
    expected = {c: "pass" for c in ALWAYS}
    if install.kind == "plain":
        expected["triggers.event"] = "warn"
        expected["roles.members"] = "warn"
    if pg_cron_loaded(install.su):  # and no job scheduled: an external scheduler may run it
        expected["retention.job_scheduled"] = "warn"
    assert statuses(payload) == expected, json.dumps(payload, indent=2)
    return payload


# --------------------------------------------------------------------------
# Passing
# --------------------------------------------------------------------------


def test_a_sound_installation_passes(installed: Install, tmp_path: Path) -> None:
    payload = sound(installed)
    assert [c["id"] for c in payload["checks"]] == ALWAYS
    assert payload["format"] == 1 and payload["auditsql"] == VERSION
    assert payload["schema"] == "audit" and payload["installed_version"] == VERSION
    for item in payload["checks"]:
        assert item["message"] and "\n" not in item["message"]
        if item["status"] == "pass":
            assert item["hint"] == ""
    capture = by_id(payload, "triggers.capture")["message"]
    assert "4 audited tables, 15 capture triggers" in capture  # 3 x 4, parted 2, parted_1 1
    event = by_id(payload, "triggers.event")
    if installed.kind == "plain":
        assert "installed without a superuser" in event["message"]
        assert "superuser" in event["hint"]
    junit = tmp_path / "report.xml"
    ok("verify", "--dsn", installed.dsn, "--junit", str(junit))
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert [case.get("name") for case in suite.iter("testcase")] == ALWAYS


def test_the_result_is_the_worst_status_and_the_summary_counts_them(
        installed: Install, tmp_path: Path) -> None:
    """Warnings alone (an installation made without a superuser always has
    some) make the result `warn`, in the JSON and the JUnit report, and exit 0."""
    junit = tmp_path / "report.xml"
    payload = report(installed.dsn, "--junit", str(junit), code=0)
    found = list(statuses(payload).values())
    assert payload["summary"] == {s: found.count(s) for s in ("pass", "warn", "fail")}
    assert payload["result"] == ("warn" if "warn" in found else "pass")
    assert installed.kind == "superuser" or payload["result"] == "warn"
    result = ET.parse(junit).getroot().find(".//property[@name='result']")
    assert result is not None and result.get("value") == payload["result"]


def test_every_check_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text(encoding="utf-8")
    for check_id in checks.REGISTRY:
        assert f"`{check_id}`" in doc, f"{check_id} is not in docs/verify.md"


def test_plain_output_for_scripts_and_ci_logs(superuser_install: Install) -> None:
    res = ok("verify", "--dsn", superuser_install.dsn, "--expect", "app.orders")
    lines = res.stdout.splitlines()
    assert lines[0] == f"auditsql {VERSION}: schema audit, installed {VERSION}"
    assert lines[1].split()[:2] == ["PASS", "install.present"]
    warned = 1 if pg_cron_loaded(superuser_install.su) else 0
    assert lines[-1] == (f"{len(ALWAYS) + 1} checks: {len(ALWAYS) + 1 - warned} passed,"
                         f" {warned} warnings, 0 failed")
    assert res.stderr == ""
    assert "\x1b" not in res.stdout and "┃" not in res.stdout


def test_a_table_on_a_terminal(superuser_install: Install) -> None:
    res = run("verify", "--dsn", superuser_install.dsn, subprocess_only=True,
              env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"})
    assert res.code == 0, str(res)
    assert "┃" in res.stdout and "install.present" in res.stdout and "PASS" in res.stdout


def test_verify_as_a_reader(pg: Server, superuser_install: Install, make_role: MakeRole) -> None:
    """Checking needs the right to read the audit schema, nothing more."""
    role = make_role()
    execute(superuser_install.su, f'GRANT auditsql_reader TO "{role}"')
    payload = report(pg.dsn(dbname(superuser_install.su), user=role), code=0)
    assert {c: s for c, s in statuses(payload).items() if s != "pass"} == (
        {"retention.job_scheduled": "warn"} if pg_cron_loaded(superuser_install.su) else {})


def test_verify_without_the_right_to_read(
        pg: Server, superuser_install: Install, make_role: MakeRole, tmp_path: Path) -> None:
    role = make_role()
    dsn = pg.dsn(dbname(superuser_install.su), user=role)
    payload = report(dsn, code=1)
    assert statuses(payload) == {"install.present": "fail"}
    assert "may not read" in by_id(payload, "install.present")["message"]
    assert payload["installed_version"] is None


# --------------------------------------------------------------------------
# Failing on purpose
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tampering:
    """Something done by hand to an installation, the checks that must
    catch it, and how to put it right."""

    name: str
    breaks: str  # SQL, run by a superuser; {owner}, {partition} filled in
    fails: tuple[str, ...]
    restore: str = ""  # SQL; "upgrade" also runs `auditsql upgrade`
    upgrade: bool = True
    superuser_only: bool = False  # needs the event triggers
    status: str = "fail"
    both: bool = False  # also on the installation made without a superuser
    plain_only: bool = False  # only there: the event triggers record it as it happens


TAMPERINGS = [
    Tampering("edit a function by hand",
              "CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger LANGUAGE plpgsql"
              " SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN NULL; END $$",
              ("objects.fingerprints",), both=True),
    Tampering("unpin a SECURITY DEFINER function",
              "ALTER FUNCTION audit.refresh(regclass) RESET search_path",
              ("objects.fingerprints", "functions.security_definer"), both=True),
    Tampering("drop a function's fingerprint",
              "COMMENT ON FUNCTION audit.attach(regclass, text[], text, text[], text[], jsonb,"
              " boolean, boolean, boolean) IS NULL",
              ("objects.fingerprints",)),
    Tampering("disable a trigger", "ALTER TABLE app.orders DISABLE TRIGGER auditsql_capture_insert",
              ("triggers.capture",),
              "ALTER TABLE app.orders ENABLE ALWAYS TRIGGER auditsql_capture_insert",
              upgrade=False, both=True),
    Tampering("enable a trigger for replicas only",
              "ALTER TABLE app.nopk ENABLE REPLICA TRIGGER auditsql_capture_update",
              ("triggers.capture",),
              "ALTER TABLE app.nopk ENABLE ALWAYS TRIGGER auditsql_capture_update", upgrade=False),
    Tampering("enable a trigger without ALWAYS",
              'ALTER TABLE app."Mixed Case" ENABLE TRIGGER auditsql_capture_delete',
              ("triggers.capture",),
              'ALTER TABLE app."Mixed Case" ENABLE ALWAYS TRIGGER auditsql_capture_delete',
              upgrade=False),
    Tampering("disable a trigger on one partition",
              "ALTER TABLE app.parted_1 DISABLE TRIGGER auditsql_capture_row",
              ("triggers.capture",),
              "ALTER TABLE app.parted_1 ENABLE ALWAYS TRIGGER auditsql_capture_row", upgrade=False),
    Tampering("drop a trigger", "DROP TRIGGER auditsql_capture_truncate ON app.orders",
              ("triggers.capture",), "SELECT audit.attach('app.orders')", upgrade=False, both=True),
    Tampering("replace a trigger",
              "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql"
              " AS $$ BEGIN RETURN NULL; END $$;"
              " CREATE OR REPLACE TRIGGER auditsql_capture_insert AFTER INSERT ON app.orders"
              " FOR EACH STATEMENT EXECUTE FUNCTION public.noop();"
              " ALTER TABLE app.orders ENABLE ALWAYS TRIGGER auditsql_capture_insert",
              ("triggers.capture",),
              "DROP FUNCTION public.noop() CASCADE; SELECT audit.attach('app.orders')",
              upgrade=False),
    Tampering("grant UPDATE on the log to a role", "GRANT UPDATE ON audit.events TO {app}",
              ("privileges.writers",), "REVOKE UPDATE ON audit.events FROM {app}", upgrade=False,
              both=True),
    Tampering("grant INSERT on a partition to PUBLIC", "GRANT INSERT ON {partition} TO PUBLIC",
              ("privileges.writers", "privileges.public"),
              "REVOKE INSERT ON {partition} FROM PUBLIC", upgrade=False),
    Tampering("let PUBLIC run an internal function",
              "GRANT EXECUTE ON FUNCTION audit.ensure_partitions(timestamptz, int) TO PUBLIC",
              ("privileges.public",),
              "REVOKE EXECUTE ON FUNCTION audit.ensure_partitions(timestamptz, int) FROM PUBLIC",
              upgrade=False),
    Tampering("make the owner role LOGIN", "ALTER ROLE {owner} LOGIN", ("roles.owner",),
              "ALTER ROLE {owner} NOLOGIN", upgrade=False, both=True),
    Tampering("make the owner role a superuser", "ALTER ROLE {owner} SUPERUSER",
              ("roles.owner",), "ALTER ROLE {owner} NOSUPERUSER", upgrade=False),
    Tampering("let a role set the log's sequence",
              "GRANT UPDATE ON SEQUENCE audit.events_id_seq TO {app}", ("privileges.writers",),
              "REVOKE UPDATE ON SEQUENCE audit.events_id_seq FROM {app}", upgrade=False, both=True),
    Tampering("let a role add triggers to an audit table", "GRANT TRIGGER ON audit.tables TO {app}",
              ("privileges.writers",), "REVOKE TRIGGER ON audit.tables FROM {app}", upgrade=False),
    # The triggers stay as attach made them, but write nothing.
    Tampering("replace a capture function",
              "CREATE OR REPLACE FUNCTION audit.capture_{orders}() RETURNS trigger"
              " LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN NULL; END $$",
              ("objects.fingerprints", "functions.security_definer"),
              "SELECT audit.attach('app.orders')", upgrade=False, both=True),
    Tampering("remove a guard", "DROP TRIGGER auditsql_guard_statement ON audit.events_default",
              ("objects.present", "triggers.guards"), both=True),
    Tampering("remove a partition's guard", "DROP TRIGGER auditsql_guard_statement ON {partition}",
              ("triggers.guards",),
              "CREATE TRIGGER auditsql_guard_statement BEFORE UPDATE OR DELETE OR TRUNCATE"
              " ON {partition} FOR EACH STATEMENT EXECUTE FUNCTION audit.guard();"
              " ALTER TABLE {partition} ENABLE ALWAYS TRIGGER auditsql_guard_statement;"
              " SELECT audit.stamp('pg_trigger', ARRAY[oid]) FROM pg_trigger"
              " WHERE tgrelid = '{partition}'::regclass AND tgname = 'auditsql_guard_statement'",
              upgrade=False),
    Tampering("disable a guard", "ALTER TABLE audit.events DISABLE TRIGGER auditsql_guard_row",
              ("triggers.guards",),
              "ALTER TABLE audit.events ENABLE ALWAYS TRIGGER auditsql_guard_row", upgrade=False),
    Tampering("change a table by hand", "ALTER TABLE audit.tables ADD COLUMN note text",
              ("objects.fingerprints",), "ALTER TABLE audit.tables DROP COLUMN note",
              upgrade=False, both=True),
    Tampering("hand the log to another role", "ALTER TABLE audit.installation OWNER TO {app}",
              ("objects.ownership", "privileges.writers", "privileges.readers"),
              "ALTER TABLE audit.installation OWNER TO {owner}", upgrade=False),
    Tampering("let the owner role own something elsewhere",
              "CREATE FUNCTION public.backdoor() RETURNS int LANGUAGE sql SECURITY DEFINER"
              " AS 'SELECT 1'; ALTER FUNCTION public.backdoor() OWNER TO {owner}",
              ("objects.ownership",), "DROP FUNCTION public.backdoor()", upgrade=False),
    Tampering("add a SECURITY DEFINER function to the audit schema",
              "CREATE FUNCTION audit.helper() RETURNS int LANGUAGE sql SECURITY DEFINER"
              " AS 'SELECT 1'; ALTER FUNCTION audit.helper() OWNER TO {owner};"
              " REVOKE ALL ON FUNCTION audit.helper() FROM PUBLIC",
              ("functions.security_definer",), "DROP FUNCTION audit.helper()", upgrade=False),
    Tampering("leave something else in the audit schema",
              "CREATE TABLE audit.extra (id int); ALTER TABLE audit.extra OWNER TO {owner};"
              " REVOKE ALL ON audit.extra FROM PUBLIC",
              ("objects.unexpected",), "DROP TABLE audit.extra", upgrade=False, status="warn"),
    Tampering("let the owner role rewrite the log",
              "GRANT UPDATE, DELETE, TRUNCATE ON audit.events TO {owner}",
              ("privileges.writers",),
              "REVOKE UPDATE, DELETE, TRUNCATE ON audit.events FROM {owner}", upgrade=False,
              both=True),
    Tampering("let a role update one column of a partition",
              "GRANT UPDATE (after) ON {partition} TO {app}",
              ("privileges.writers",), "REVOKE UPDATE (after) ON {partition} FROM {app}",
              upgrade=False, both=True),
    Tampering("let an application role read the log", "GRANT SELECT ON audit.events TO {app}",
              ("privileges.readers",), "REVOKE SELECT ON audit.events FROM {app}",
              upgrade=False, both=True),
    Tampering("let an application role read one column of the history",
              "GRANT SELECT (before) ON audit.history TO {app}",
              ("privileges.readers",), "REVOKE SELECT (before) ON audit.history FROM {app}",
              upgrade=False),
    Tampering("detach a partition, write, attach it again",
              "ALTER TABLE app.parted DETACH PARTITION app.parted_1;"
              " INSERT INTO app.parted_1 VALUES (7);"
              " ALTER TABLE app.parted ATTACH PARTITION app.parted_1 FOR VALUES FROM (0) TO (100)",
              ("triggers.capture",), "DELETE FROM app.parted_1 WHERE id = 7;"
              " SELECT audit.attach('app.parted')", upgrade=False, plain_only=True),
    Tampering("drop a capture trigger and create it again",
              "DROP TRIGGER auditsql_capture_insert ON app.orders;"
              " CREATE TRIGGER auditsql_capture_insert AFTER INSERT ON app.orders"
              " REFERENCING NEW TABLE AS auditsql_new FOR EACH STATEMENT"
              " EXECUTE FUNCTION audit.capture_{orders}();"
              " ALTER TABLE app.orders ENABLE ALWAYS TRIGGER auditsql_capture_insert",
              ("triggers.capture",), "SELECT audit.attach('app.orders')", upgrade=False,
              plain_only=True),
    Tampering("record another version", "INSERT INTO audit.installation (version, settings)"
              " SELECT '0.0.1', settings FROM audit.installation"
              " ORDER BY installed_at DESC LIMIT 1",
              ("install.version",), "DELETE FROM audit.installation WHERE version = '0.0.1'",
              upgrade=False),
    Tampering("drop an event trigger", "DROP EVENT TRIGGER auditsql_ddl_audit",
              ("objects.present", "triggers.event"), superuser_only=True),
    Tampering("disable an event trigger", "ALTER EVENT TRIGGER auditsql_drop_audit DISABLE",
              ("triggers.event",), "ALTER EVENT TRIGGER auditsql_drop_audit ENABLE ALWAYS",
              upgrade=False, superuser_only=True),
    Tampering("enable an event trigger without ALWAYS",
              "ALTER EVENT TRIGGER auditsql_ddl_audit ENABLE",
              ("triggers.event",), "ALTER EVENT TRIGGER auditsql_ddl_audit ENABLE ALWAYS",
              upgrade=False, superuser_only=True),
    Tampering("edit the event trigger function",
              f"CREATE OR REPLACE FUNCTION {guard_schema_name('audit')}.ddl_guard()"
              " RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$",
              ("objects.fingerprints",), superuser_only=True),
]
CASES = [
    *(pytest.param("superuser", t, id=f"superuser-{t.name}") for t in TAMPERINGS
      if not t.plain_only),
    # Without event triggers the same tampering is caught the same way.
    *(pytest.param("plain", t, id=f"plain-{t.name}") for t in TAMPERINGS
      if t.both or t.plain_only),
]


@pytest.fixture(scope="module")
def app_role(pg: Server) -> Iterator[str]:
    role = unique_name("auditsql_r_app")
    pg.admin().execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    yield role
    drop_role(pg, role)


@pytest.mark.parametrize(("kind", "tampering"), CASES)
def test_tampering_is_caught(request: pytest.FixtureRequest, kind: str, app_role: str,
                             tampering: Tampering, tmp_path: Path) -> None:
    installed: Install = request.getfixturevalue(f"{kind}_install")
    names = {"owner": f'"{installed.owner}"', "partition": installed.partition,
             "app": f'"{app_role}"', "orders": scalar(installed.su, "SELECT 'app.orders'::regclass::oid")}
    execute(installed.su, tampering.breaks.format(**names))
    junit = tmp_path / "report.xml"
    try:
        payload = report(installed.su, "--junit", str(junit))
        found = statuses(payload)
        for check_id in tampering.fails:
            assert found[check_id] == tampering.status, json.dumps(by_id(payload, check_id))
            assert by_id(payload, check_id)["hint"]
        others = {c: s for c, s in found.items() if c not in tampering.fails and s == "fail"}
        assert others == {}, f"{tampering.name} also failed {others}"
        failures = {case.get("name") for case in ET.parse(junit).getroot().iter("testcase")
                    if case.find("failure") is not None}
        assert failures == ({c for c in tampering.fails} if tampering.status == "fail" else set())
    finally:
        if tampering.restore:
            execute(installed.su, tampering.restore.format(**names))
        if tampering.upgrade:
            ok("upgrade", "--dsn", installed.dsn)
    sound(installed)


def test_upgrade_does_not_bless_a_table_changed_by_hand(superuser_install: Install) -> None:
    execute(superuser_install.su, "ALTER TABLE audit.tables ADD COLUMN note text")
    try:
        res = ok("upgrade", "--dsn", superuser_install.dsn)
        assert res.stderr.splitlines() == [
            "still outdated: table audit.tables (changed since install); upgrade does not "
            "change it, see `auditsql verify`",
            f"auditsql {VERSION} in schema audit: nothing repaired; 1 object still amiss",
        ]
        payload = json.loads(ok("upgrade", "--dsn", superuser_install.dsn, "--json").stdout)
        assert payload["up_to_date"] is False
        assert payload["unresolved"] == [{"kind": "table", "identity": "audit.tables",
                                          "state": "outdated", "reason": "changed since install"}]
        item = by_id(report(superuser_install.dsn, code=1), "objects.fingerprints")
        assert item["details"] == ["table audit.tables: changed since install"]
        assert "by hand" in item["hint"]
    finally:
        execute(superuser_install.su, "ALTER TABLE audit.tables DROP COLUMN note")
    sound(superuser_install)


def test_without_event_triggers_the_table_owner_is_caught(plain_install: Install) -> None:
    """Installed without a superuser, the role that owns the tables can
    disable a capture trigger itself (with event triggers it is refused, see
    tests/sql/test_bypass.py); verify catches it."""
    dsn = plain_install.dsn
    execute(dsn, "ALTER TABLE app.orders DISABLE TRIGGER auditsql_capture_update")
    try:
        item = by_id(report(dsn, code=1), "triggers.capture")
        assert item["details"] == ["auditsql_capture_update on app.orders: disabled"]
    finally:
        ok("upgrade", "--dsn", dsn)
    sound(plain_install)


def test_upgrade_reports_versions_and_tables_attached_again(superuser_install: Install) -> None:
    dsn = superuser_install.dsn
    execute(dsn, "INSERT INTO audit.installation (version, settings)"
                 " SELECT '0.1.0', settings FROM audit.installation"
                 " ORDER BY installed_at DESC LIMIT 1;"
                 "ALTER TABLE app.orders DISABLE TRIGGER auditsql_capture_insert")
    res = ok("upgrade", "--dsn", dsn)
    assert res.stderr.splitlines() == [
        "attached app.orders again (auditsql_capture_insert on app.orders: disabled)",
        f"auditsql upgraded from 0.1.0 to {VERSION} in schema audit",
    ]
    again = ok("upgrade", "--dsn", dsn)
    assert again.stderr == f"auditsql {VERSION} in schema audit is up to date\n"
    sound(superuser_install)


# A function edited, a capture trigger disabled and a guard dropped, by a
# superuser who lets the event triggers pass with auditsql.permit_ddl.
REPAIRABLE = """
SET auditsql.permit_ddl = on;
CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN NULL; END $$;
ALTER TABLE app.orders DISABLE TRIGGER auditsql_capture_insert;
ALTER TABLE app.nopk ENABLE REPLICA TRIGGER auditsql_capture_update;
DROP TRIGGER auditsql_guard_statement ON audit.events_default;
"""


def test_upgrade_reports_each_repair(installed: Install) -> None:
    """Each table attached again with why, each object restored with what
    it was; then up to date. The same facts with --json."""
    execute(installed.su, REPAIRABLE)
    res = ok("upgrade", "--dsn", installed.dsn)
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        "attached app.nopk again (auditsql_capture_update on app.nopk: enabled for replica only)",
        "attached app.orders again (auditsql_capture_insert on app.orders: disabled)",
        "restored function audit.guard() (was outdated: changed since install)",
        "restored trigger auditsql_guard_statement on audit.events_default"
        " (was missing: not in the database)",
        f"auditsql {VERSION} in schema audit: 2 tables attached again, 2 objects restored",
    ]
    again = ok("upgrade", "--dsn", installed.dsn)
    assert again.stderr == f"auditsql {VERSION} in schema audit is up to date\n"
    sound(installed)

    execute(installed.su, REPAIRABLE)
    res = ok("upgrade", "--dsn", installed.dsn, "--json")
    assert res.stderr == ""
    assert json.loads(res.stdout) == {
        "schema": "audit", "from_version": VERSION, "to_version": VERSION, "up_to_date": False,
        "reattached": [
            {"table": "app.nopk", "reasons": ["auditsql_capture_update on app.nopk: enabled for replica only"]},
            {"table": "app.orders",
             "reasons": ["auditsql_capture_insert on app.orders: disabled"]},
        ],
        "restored": [
            {"kind": "function", "identity": "audit.guard()", "state": "outdated",
             "reason": "changed since install"},
            {"kind": "trigger", "identity": "auditsql_guard_statement on audit.events_default",
             "state": "missing", "reason": "not in the database"},
        ],
        "unresolved": [],
    }
    again = json.loads(ok("upgrade", "--dsn", installed.dsn, "--json").stdout)
    assert again["up_to_date"] is True
    assert (again["reattached"], again["restored"], again["unresolved"]) == ([], [], [])
    sound(installed)


# --------------------------------------------------------------------------
# Tables: --expect, --all-tables, --exclude
# --------------------------------------------------------------------------


def test_expected_tables(superuser_install: Install) -> None:
    dsn = superuser_install.dsn
    execute(dsn, "CREATE TABLE app.untracked (id int PRIMARY KEY)")
    try:
        payload = report(dsn, "--expect", "app.orders", "--expect", '"app"."Mixed Case"', code=0)
        assert by_id(payload, "tables.expected")["message"] == "all 2 expected tables audited"
        item = by_id(report(dsn, "--expect", "app.orders", "--expect", "app.untracked",
                            "--expect", "app.nosuch", code=1), "tables.expected")
        assert item["status"] == "fail"
        assert item["details"] == ["app.nosuch: no such table", "app.untracked: not audited"]
    finally:
        execute(dsn, "DROP TABLE app.untracked")


def test_all_tables(superuser_install: Install) -> None:
    dsn = superuser_install.dsn
    assert by_id(report(dsn, "--all-tables", code=0), "tables.all")["status"] == "pass"
    execute(dsn, "CREATE TABLE app.untracked (id int PRIMARY KEY);"
                 "CREATE TABLE public.django_migrations (id int PRIMARY KEY);"
                 "CREATE TEMPORARY TABLE scratch (id int)")
    try:
        item = by_id(report(dsn, "--all-tables", code=1), "tables.all")
        assert item["details"] == ["app.untracked", "public.django_migrations"]
        item = by_id(report(dsn, "--all-tables", "--exclude", "django_*", code=1), "tables.all")
        assert item["details"] == ["app.untracked"]
        item = by_id(report(dsn, "--all-tables", "--exclude", "django_*",
                            "--exclude", "app.untr*", code=0), "tables.all")
        assert item["message"] == "all 4 tables audited (2 patterns excluded)"
        assert by_id(report(dsn, "--all-tables", "--exclude", "*.untracked",
                            "--exclude", "public.*", code=0), "tables.all")["status"] == "pass"
    finally:
        execute(dsn, "DROP TABLE app.untracked, public.django_migrations")


def test_a_table_dropped_while_audited_warns(superuser_install: Install) -> None:
    dsn = superuser_install.dsn
    execute(dsn, "CREATE TABLE app.gone (id int PRIMARY KEY)")
    ok("attach", "--dsn", dsn, "app.gone")
    oid = scalar(dsn, "SELECT 'app.gone'::regclass::oid")
    execute(dsn, "DROP TABLE app.gone")
    item = by_id(report(dsn, code=0), "triggers.capture")
    assert item["status"] == "warn" and item["details"] == [f"dropped table {oid}"]
    assert f"detach(OID) for OID in {oid}" in item["hint"]
    execute(dsn, f"SELECT audit.detach({oid})")
    sound(superuser_install)


# --------------------------------------------------------------------------
# Not installed, exit codes, JUnit
# --------------------------------------------------------------------------


def test_not_installed(superuser_install: Install, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    payload = report(superuser_install.dsn, "--schema", "nowhere", "--junit", str(junit), code=1)
    assert statuses(payload) == {"install.present": "fail"}
    assert by_id(payload, "install.present")["hint"] == "run `auditsql install`"
    assert payload["installed_version"] is None and payload["result"] == "fail"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("1", "1")
    res = run("verify", "--dsn", superuser_install.dsn, "--schema", "nowhere")
    assert res.code == 1 and "FAIL  install.present" in res.stdout
    assert "hint: run `auditsql install`" in res.stdout


def test_junit_report(superuser_install: Install, tmp_path: Path) -> None:
    dsn = superuser_install.dsn
    junit = tmp_path / "nested" / "report.xml"
    junit.parent.mkdir()
    execute(dsn, "ALTER TABLE app.orders DISABLE TRIGGER auditsql_capture_insert;"
                 "CREATE TABLE audit.extra (id int);"
                 "ALTER TABLE audit.extra OWNER TO auditsql_owner")
    try:
        res = run("verify", "--dsn", dsn, "--expect", "app.orders", "--junit", str(junit))
        assert res.code == 1, str(res)
    finally:
        execute(dsn, "DROP TABLE audit.extra")
        ok("upgrade", "--dsn", dsn)
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == [*ALWAYS, "tables.expected"]
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == "1"
    failure = cases["triggers.capture"].find("failure")
    assert failure is not None and "auditsql_capture_insert" in failure.get("message", "")
    assert "hint: run `auditsql attach TABLE` again" in (failure.text or "")
    warning = cases["objects.unexpected"].find("system-out")
    assert warning is not None and (warning.text or "").startswith("warn: ")
    assert cases["install.present"].find("failure") is None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {"auditsql": VERSION, "schema": "audit", "installed_version": VERSION,
                          "result": "fail"}


def test_usage_and_connection_errors(superuser_install: Install, tmp_path: Path) -> None:
    dsn = superuser_install.dsn
    usage_error(run("verify", "--dsn", dsn, "--exclude", "x*"), "--all-tables")
    error_line(run("verify", "--dsn", dsn, "--expect", '"unterminated'), 2, "invalid table name")
    error_line(run("verify", "--dsn", dsn, "--junit", str(tmp_path / "no" / "dir" / "r.xml")),
               2, "cannot write")
    error_line(run("verify", "--dsn", "host=/nonexistent/auditsql-socket user=x dbname=x",
                   subprocess_only=True), 2, "connect")
    usage_error(run("verify"), "--dsn")


def test_retention_checks_warn_without_a_policy_and_fail_with_events_in_the_default_partition(
        db: str) -> None:
    ok("install", "--dsn", db)
    payload = report(db, code=0)
    assert statuses(payload)["retention.policy_set"] == "warn"
    assert by_id(payload, "retention.policy_set")["message"] == (
        "no policy: every event is kept until one is set")
    assert "auditsql retention set" in by_id(payload, "retention.policy_set")["hint"]
    assert statuses(payload)["retention.default_partition_empty"] == "pass"
    ok("retention", "set", "saas", "--dsn", db)
    execute(db, "INSERT INTO audit.events (category, action, occurred_at)"
                " VALUES ('system', 'probe', '2001-01-01')")
    payload = report(db, code=1)
    assert statuses(payload)["retention.policy_set"] == "pass"
    assert statuses(payload)["retention.default_partition_empty"] == "fail"
    ok("retention", "run", "--dsn", db)
    assert statuses(report(db))["retention.default_partition_empty"] == "pass"


def test_a_capture_function_left_out_of_date_warns_until_upgrade_attaches_again(db: str) -> None:
    """After ALTER TABLE made where no event trigger refreshes capture (as
    install does: with the flag), capture is complete but slower: a warning,
    not a failure. With the event triggers, ALTER TABLE refreshes it."""
    ok("install", "--dsn", db, "--retention", "saas")
    execute(db, "CREATE TABLE public.kept (id int PRIMARY KEY)")
    ok("attach", "--dsn", db, "public.kept")
    assert statuses(report(db))["capture.functions"] == "pass"
    execute(db, "BEGIN; SET LOCAL auditsql.permit_ddl = on;"
                " ALTER TABLE public.kept ADD COLUMN note text; COMMIT")
    payload = report(db, code=0)
    assert statuses(payload)["capture.functions"] == "warn"
    assert statuses(payload)["triggers.capture"] == "pass"
    assert "capture function out of date" in by_id(payload, "capture.functions")["message"]
    assert "attached public.kept again" in ok("upgrade", "--dsn", db).stderr
    assert statuses(report(db))["capture.functions"] == "pass"
    execute(db, "ALTER TABLE public.kept ADD COLUMN more text")
    assert statuses(report(db))["capture.functions"] == "pass"


def test_a_renamed_policy_column_fails(db: str) -> None:
    """A redacted column renamed would be stored in clear under its new
    name: a failure until attach names it again; an excluded one, a warning."""
    ok("install", "--dsn", db, "--retention", "saas")
    execute(db, "CREATE TABLE public.users (id int PRIMARY KEY, pw text, seen timestamptz)")
    ok("attach", "--dsn", db, "users", "--redact", "pw", "--exclude", "seen")
    execute(db, "ALTER TABLE public.users RENAME COLUMN seen TO last_seen")
    item = by_id(report(db, code=0), "capture.columns")
    assert item["status"] == "warn" and item["details"] == [
        "public.users: exclude seen is no longer a column of the table (renamed or dropped)"]
    execute(db, "ALTER TABLE public.users RENAME COLUMN pw TO password_hash")
    item = by_id(report(db, code=1), "capture.columns")
    assert item["status"] == "fail" and len(item["details"]) == 2
    ok("attach", "--dsn", db, "users", "--redact", "password_hash", "--exclude", "last_seen")
    assert statuses(report(db))["capture.columns"] == "pass"


def test_a_json_cast_whose_owner_stopped_being_a_superuser_fails(
        pg: Server, db: str, make_role: MakeRole) -> None:
    """A superuser's cast to json is trusted; once its function's owner is
    no superuser, capture would run that role's code as the owner role."""
    ok("install", "--dsn", db, "--retention", "saas")
    role = make_role("SUPERUSER")
    execute(pg.dsn(dbname(db), user=role),
            "CREATE TYPE public.mood AS ENUM ('calm');"
            " CREATE FUNCTION public.mood_json(public.mood) RETURNS json LANGUAGE sql"
            " AS $$ SELECT to_json($1::text) $$;"
            " CREATE CAST (public.mood AS json) WITH FUNCTION public.mood_json(public.mood)")
    assert statuses(report(db))["capture.json_casts"] == "pass"
    execute(db, f'ALTER ROLE "{role}" NOSUPERUSER')
    item = by_id(report(db, code=1), "capture.json_casts")
    assert item["details"] == [f"mood -> json (function mood_json(mood), owned by {role})"]
    assert item["hint"].startswith("drop the cast, or have a superuser own its function")
    execute(db, "DROP CAST (public.mood AS json)")
    assert statuses(report(db))["capture.json_casts"] == "pass"


def test_trusted_id_columns_warn(db: str) -> None:
    ok("install", "--dsn", db, "--retention", "saas")
    execute(db, "CREATE TABLE public.views (session text, seq int)")
    ok("attach", "--dsn", db, "views", "--id-columns", "session,seq", "--trust-id-columns")
    item = by_id(report(db, code=0), "capture.id_columns")
    assert item["status"] == "warn"
    assert "session, seq are not backed by a unique index" in item["details"][0]


def test_a_partition_detached_and_attached_again_unrecorded_fails_until_attach_records_it(
        plain_install: Install) -> None:
    """Without event triggers, DETACH PARTITION, a write, ATTACH PARTITION
    leave every trigger in place but for the partition's clone, created
    again: verify fails until attach records it, as an event in the log."""
    su = plain_install.su
    execute(su, "ALTER TABLE app.parted DETACH PARTITION app.parted_1;"
                " INSERT INTO app.parted_1 VALUES (8);"
                " ALTER TABLE app.parted ATTACH PARTITION app.parted_1 FOR VALUES FROM (0) TO (100)")
    try:
        item = by_id(report(su, code=1), "triggers.capture")
        assert item["details"] == ["capture triggers of app.parted_1 were dropped or created again"
                                   " since they were recorded: writes in between may be missing"]
        ok("attach", "--dsn", plain_install.dsn, "app.parted")
        assert scalar(su, "SELECT after ->> 'table' FROM audit.events"
                          " WHERE action = 'capture_triggers_replaced'"
                          " AND entity_type = 'app.parted' ORDER BY id DESC LIMIT 1") == "app.parted_1"
    finally:
        execute(su, "DELETE FROM app.parted_1 WHERE id = 8")
    sound(plain_install)


def test_a_dropped_admin_role_warns_until_upgrade_creates_it(pg: Server, db: str) -> None:
    """docs/verify.md, `roles.admin`: warns when the admin role was dropped;
    what to do: `auditsql upgrade`."""
    admin = unique_name("auditsql_r_adm")
    try:
        ok("install", "--dsn", db, "--retention", "saas", "--admin-role", admin)
        assert statuses(report(db, code=0))["roles.admin"] == "pass"
        drop_role(pg, admin)
        assert scalar(db, f"SELECT count(*) FROM pg_roles WHERE rolname = '{admin}'") == 0
        item = by_id(report(db, code=0), "roles.admin")
        assert item["status"] == "warn"
        assert item["message"] == f"admin role {admin} does not exist"
        assert "auditsql upgrade" in item["hint"]
        ok("upgrade", "--dsn", db)
        assert statuses(report(db, code=0))["roles.admin"] == "pass"
    finally:
        drop_role(pg, admin)


def test_id_columns_whose_unique_index_was_dropped_warn(db: str) -> None:
    """docs/verify.md, `capture.id_columns`: warns when explicit id columns
    are no longer backed by a unique index (the index was dropped since)."""
    ok("install", "--dsn", db, "--retention", "saas")
    execute(db, "CREATE TABLE public.views (session text NOT NULL, seq int NOT NULL,"
                " CONSTRAINT views_key UNIQUE (session, seq))")
    ok("attach", "--dsn", db, "views", "--id-columns", "session,seq")
    assert by_id(report(db, code=0), "capture.id_columns")["status"] == "pass"
    execute(db, "ALTER TABLE public.views DROP CONSTRAINT views_key")
    item = by_id(report(db, code=0), "capture.id_columns")
    assert item["status"] == "warn"
    assert "session, seq are not backed by a unique index" in item["details"][0]
    assert item["hint"].startswith("add a unique constraint")


def test_all_tables_leaves_out_extension_tables(superuser_install: Install) -> None:
    """docs/verify.md, `--all-tables`: not part of an extension. The table is
    made a member of an extension every server has (plpgsql)."""
    dsn = superuser_install.dsn
    execute(dsn, "CREATE TABLE public.ext_member (id int)")
    try:
        item = by_id(report(dsn, "--all-tables", code=1), "tables.all")
        assert item["details"] == ["public.ext_member"]
        execute(dsn, "ALTER EXTENSION plpgsql ADD TABLE public.ext_member")
        try:
            item = by_id(report(dsn, "--all-tables", code=0), "tables.all")
            assert item["status"] == "pass" and "public.ext_member" not in json.dumps(item)
        finally:
            execute(dsn, "ALTER EXTENSION plpgsql DROP TABLE public.ext_member")
    finally:
        execute(dsn, "DROP TABLE public.ext_member")


@pytest.mark.parametrize(("attach", "ddl", "detail"), [
    ((), "ALTER TABLE public.users RENAME COLUMN id TO user_id",
     "public.users: id column id is no longer a column of the table (renamed or dropped)"),
    (("--on-change", "role=role_changed"), "ALTER TABLE public.users RENAME COLUMN role TO grade",
     "public.users: on-change role is no longer a column of the table (renamed or dropped)"),
    (("--redact", "pw"), "ALTER TABLE public.users DROP COLUMN pw",
     "public.users: redact pw is no longer a column of the table (renamed or dropped)"),
    (("--on-change", "role=role_changed"), "ALTER TABLE public.users DROP COLUMN role",
     "public.users: on-change role is no longer a column of the table (renamed or dropped)"),
    (("--id-columns", "tenant,seq"), "ALTER TABLE public.users DROP COLUMN seq",
     "public.users: id column seq is no longer a column of the table (renamed or dropped)"),
], ids=["key renamed", "on-change renamed", "redacted dropped", "on-change dropped",
        "key dropped"])
def test_a_key_redacted_or_on_change_column_renamed_or_dropped_fails(
        db: str, attach: tuple[str, ...], ddl: str, detail: str) -> None:
    """README: "A key, redacted or on-change column renamed or dropped is a
    failure": `capture.columns` fails and verify exits 1, on an installation
    made by a superuser (the event triggers do not refuse the DDL)."""
    ok("install", "--dsn", db, "--retention", "saas")
    execute(db, "CREATE TABLE public.users (id int PRIMARY KEY, tenant int NOT NULL,"
                " seq int NOT NULL, pw text, role text, UNIQUE (tenant, seq))")
    ok("attach", "--dsn", db, "users", *attach)
    assert statuses(report(db, code=0))["capture.columns"] == "pass"
    execute(db, ddl)
    payload = report(db, code=1)
    item = by_id(payload, "capture.columns")
    assert payload["result"] == "fail"
    assert item["status"] == "fail" and item["details"] == [detail], json.dumps(item, indent=2)


def test_the_script_for_14_on_16_or_later_leaves_inet_or_null_outdated_until_upgrade(
        pg: Server, db: str) -> None:
    """README: "The script for 14 runs on every supported version; on 16 and
    later `status` and `verify` report `inet_or_null` as outdated until
    `auditsql upgrade`": verify fails naming it in objects.fingerprints, and
    passes once upgrade restored it."""
    from tests.cli.test_cli_install import _feed, _offline

    if pg.version_num < 160000:
        pytest.skip("the script for 14 is this server's own below 16")
    succeeded, stderr = _feed(pg, db, _offline("--retention", "saas"))
    assert succeeded, stderr
    payload = report(db, code=1)
    item = by_id(payload, "objects.fingerprints")
    assert item["status"] == "fail", json.dumps(item, indent=2)
    assert item["details"] == ["function audit.inet_or_null(text): body differs from this"
                               " version's"], json.dumps(item, indent=2)
    assert [c for c, s in statuses(payload).items() if s == "fail"] == ["objects.fingerprints"]
    assert "auditsql upgrade" in item["hint"]
    ok("upgrade", "--dsn", db)
    assert statuses(report(db, code=0))["objects.fingerprints"] == "pass"
