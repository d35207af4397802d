"""The log is append-only for every role, and only capture may write it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import (
    OWNER,
    READER,
    AppRole,
    Conn,
    attach,
    column,
    connect,
    dbname,
    expect_error,
    ident,
    month_partition,
    run,
    scalar,
)

Snapshot = list[dict[str, object]]
MUTATIONS = (
    "UPDATE {} SET action = 'forged'",
    "UPDATE {} SET actor_id = 'forged' WHERE false",
    "DELETE FROM {}",
    "DELETE FROM {} WHERE false",
    "TRUNCATE {}",
)
SEQUENCE_PRIVILEGES = ("SELECT", "UPDATE", "USAGE")
EVENT_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
CONTEXT_HELPERS = {"audit.set_actor(text,text,text)", "audit.set_request(text,text,text)",
                   "audit.set_context(text,text,text,text,text,text)",
                   "audit.push_context(text,text,text,text,text,text)", "audit.pop_context()",
                   "audit.settings_context()", "audit.current_context()"}
# What any role may call besides: attach and detach check the operator role
# themselves, and refresh only records what the catalog says.
PUBLIC_FUNCTIONS = CONTEXT_HELPERS | {
    "audit.attach(regclass,text[],text,text[],text[],jsonb,boolean,boolean,boolean)",
    "audit.detach(regclass)", "audit.erase(text,text,text[],text)", "audit.refresh(regclass)"}


def snapshot(conn: Conn) -> Snapshot:
    """Every event, in order, as (id, action, entity_id, actor_id)."""
    return conn.execute(
        "SELECT id, action, entity_id, actor_id, before, after FROM audit.events ORDER BY id"
    ).fetchall()


@pytest.fixture
def log_tables(su: Conn) -> list[str]:
    """The log and its partitions, each holding at least one event."""
    run(su, "CREATE TABLE t (id int PRIMARY KEY)")
    attach(su, "t")
    run(su, "INSERT INTO t VALUES (1), (2)",
        "INSERT INTO audit.events (category, action, occurred_at)"
        " VALUES ('system', 'probe', '2100-01-01')")
    tables = ["audit.events", month_partition(su), "audit.events_default"]
    for table in tables[1:]:
        assert scalar(su, sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table))) > 0
    return tables


@pytest.fixture
def intruder(installed_db: str) -> Iterator[Conn]:
    """A second superuser connection, for attempts under another role or setting."""
    with connect(installed_db) as conn:
        yield conn


def attempt_all(conn: Conn, tables: list[str], check: Callable[[psycopg.Error], None]) -> None:
    """Try every mutation on every table; each must fail and pass *check*."""
    for table in tables:
        for template in MUTATIONS:
            statement = template.format(table)
            with pytest.raises(psycopg.Error) as info:
                conn.execute(statement)
            check(info.value)


def append_only(error: psycopg.Error) -> None:
    """The guard refused the statement."""
    assert error.sqlstate == "42501", f"{error.sqlstate}: {error}"
    assert "append-only" in str(error), str(error)


def refused(error: psycopg.Error) -> None:
    """The statement was refused for lack of privilege or by the guard."""
    assert error.sqlstate == "42501", f"{error.sqlstate}: {error}"
    assert "append-only" in str(error) or "permission denied" in str(error), str(error)


def test_superuser_cannot_change_the_log(su: Conn, intruder: Conn, log_tables: list[str]) -> None:
    before = snapshot(su)
    attempt_all(intruder, log_tables, append_only)
    assert snapshot(su) == before


def test_replica_mode_does_not_lift_the_guard(su: Conn, intruder: Conn,
                                              log_tables: list[str]) -> None:
    before = snapshot(su)
    intruder.execute("SET session_replication_role = replica")
    attempt_all(intruder, log_tables, append_only)
    assert snapshot(su) == before


def test_owner_cannot_change_the_log(su: Conn, intruder: Conn, log_tables: list[str]) -> None:
    before = snapshot(su)
    intruder.execute(sql.SQL("SET ROLE {}").format(ident(OWNER)))
    attempt_all(intruder, log_tables, refused)
    assert snapshot(su) == before


def test_owner_granting_itself_privileges_still_hits_the_guard(
        su: Conn, intruder: Conn, log_tables: list[str]) -> None:
    before = snapshot(su)
    intruder.execute(sql.SQL("SET ROLE {}").format(ident(OWNER)))
    for table in log_tables:
        intruder.execute(sql.SQL("GRANT UPDATE, DELETE, TRUNCATE ON {} TO {}").format(
            sql.SQL(table), ident(OWNER)))
    attempt_all(intruder, log_tables, append_only)
    assert snapshot(su) == before


def test_application_role_cannot_change_the_log(su: Conn, app_conn: Conn,
                                                log_tables: list[str]) -> None:
    before = snapshot(su)
    attempt_all(app_conn, log_tables, refused)
    assert snapshot(su) == before


def test_merge_cannot_change_the_log(pg: Server, su: Conn, intruder: Conn,
                                     log_tables: list[str]) -> None:
    if pg.version_num < 150000:
        pytest.skip("MERGE needs PostgreSQL 15")
    before = snapshot(su)
    for table in log_tables:
        for action in ("UPDATE SET action = 'forged'", "DELETE"):
            expect_error(intruder, f"MERGE INTO {table} e USING (SELECT 1) s ON true"
                                   f" WHEN MATCHED THEN {action}", contains="append-only")
    assert snapshot(su) == before


def test_later_partitions_are_guarded(su: Conn, intruder: Conn) -> None:
    created = column(su, "SELECT audit.ensure_partitions(date '2090-01-15', 1)")
    assert created == ["events_2090_01"]
    run(su, "CREATE TABLE audit.events_2091_01 PARTITION OF audit.events"
            " FOR VALUES FROM ('2091-01-01 00:00+00') TO ('2091-02-01 00:00+00')",
        "INSERT INTO audit.events (category, action, occurred_at)"
        " VALUES ('system', 'probe', '2090-01-20'), ('system', 'probe', '2091-01-20')")
    before = snapshot(su)
    for table in ("audit.events_2090_01", "audit.events_2091_01"):
        expect_error(intruder, f"UPDATE {table} SET action = 'forged'", contains="append-only")
        expect_error(intruder, f"DELETE FROM {table}", contains="append-only")
    expect_error(intruder, "TRUNCATE audit.events_2090_01", contains="append-only")
    assert snapshot(su) == before
    assert scalar(su, "SELECT has_table_privilege(%s, 'audit.events_2090_01', 'UPDATE')",
                  (OWNER,)) is False


def test_nobody_holds_update_delete_or_truncate_on_the_log(su: Conn) -> None:
    rows = su.execute(
        "SELECT c.oid::regclass::text AS rel, a.grantee::regrole::text AS grantee,"
        " a.privilege_type FROM pg_class c"
        " LEFT JOIN LATERAL aclexplode(c.relacl) a ON true"
        " WHERE c.relnamespace = 'audit'::regnamespace AND c.relname LIKE 'events%'"
        " AND c.relkind IN ('r', 'p')"
    ).fetchall()
    assert {r["rel"] for r in rows} >= {"audit.events", "audit.events_default"}
    assert all(r["grantee"] is not None for r in rows), "a log table has a default ACL"
    held = [r for r in rows if r["privilege_type"] in ("UPDATE", "DELETE", "TRUNCATE")]
    assert held == []


def test_application_role_cannot_write_or_read_the_log(su: Conn, app_conn: Conn,
                                                       log_tables: list[str]) -> None:
    before = snapshot(su)
    for table in log_tables:
        expect_error(app_conn, f"INSERT INTO {table} (action, entity_type) VALUES ('created', 'x')",
                     sqlstate="42501", contains="permission denied")
        expect_error(app_conn, f"SELECT count(*) FROM {table}", sqlstate="42501")
    for table in ("audit.tables", "audit.installation"):
        expect_error(app_conn, f"SELECT * FROM {table}", sqlstate="42501")
    expect_error(app_conn, "SELECT nextval('audit.events_id_seq')", sqlstate="42501")
    assert snapshot(su) == before


def test_application_role_cannot_call_internal_functions(su: Conn, app_conn: Conn) -> None:
    """Nor borrow a capture function for its own trigger, which would write
    events as if from another table."""
    app_conn.execute("CREATE TABLE mine (id int PRIMARY KEY)")
    run(su, "CREATE TABLE victim (id int PRIMARY KEY)", "SELECT audit.attach('victim')")
    victim = scalar(su, "SELECT 'victim'::regclass::oid")
    for call in ("SELECT audit.attach('mine')", "SELECT audit.detach('mine')",
                 "SELECT audit.attach_prepare('mine', NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
                 "SELECT audit.attach_complete('mine', true, '{}')",
                 "SELECT audit.detach_prepare('victim')",
                 f"SELECT audit.capture_truncate({victim}, {victim})",
                 "SELECT audit.record_ddl('DROP TABLE', ARRAY['forged'])",
                 "SELECT audit.ensure_partitions(now(), 1)",
                 "SELECT audit.record_system_event('attached', 'x', NULL, NULL)",
                 "SELECT audit.inet_or_null('1.2.3.4')",
                 "SELECT audit.capture_source('mine')",
                 "SELECT audit.key_expression('x', ARRAY['id'])",
                 "SELECT audit.check_json_casts()",
                 "SELECT audit.pin_image_settings()",
                 "SELECT audit.restore_image_settings(ARRAY['0', 'sql_standard', 'escape'])",
                 "SELECT audit.changed_values('{}', '{}', '{}')",
                 "SELECT audit.action_category('login')",
                 "SELECT audit.configure(NULL, true)",
                 "SELECT audit.log_event('login')"):
        expect_error(app_conn, call, sqlstate="42501")
    for function in (f"capture_{victim}()", "guard()"):
        expect_error(app_conn, f"CREATE TRIGGER forge AFTER INSERT ON mine FOR EACH ROW"
                               f" EXECUTE FUNCTION audit.{function}", sqlstate="42501")
    assert scalar(su, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'mine'::regclass") == 0


def test_public_holds_nothing_but_the_public_functions(su: Conn, app: AppRole) -> None:
    public_acl = su.execute(
        "SELECT c.oid::regclass::text AS rel, a.privilege_type FROM pg_class c,"
        " aclexplode(c.relacl) a WHERE c.relnamespace = 'audit'::regnamespace AND a.grantee = 0"
    ).fetchall()
    assert public_acl == []
    relations = su.execute(
        "SELECT oid::regclass::text AS rel, relkind = 'S' AS is_sequence FROM pg_class"
        " WHERE relnamespace = 'audit'::regnamespace AND relkind IN ('r', 'p', 'S')").fetchall()
    assert len(relations) >= 5
    for rel, is_sequence in ((r["rel"], r["is_sequence"]) for r in relations):
        check = "has_sequence_privilege" if is_sequence else "has_table_privilege"
        for privilege in SEQUENCE_PRIVILEGES if is_sequence else EVENT_PRIVILEGES:
            held = scalar(su, f"SELECT {check}(%s, %s, %s)", (app.name, rel, privilege))
            assert held is False, f"{app.name} holds {privilege} on {rel}"
    executable = set(column(
        su, "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = 'audit'::regnamespace"
            " AND has_function_privilege(%s, p.oid, 'EXECUTE')", (app.name,)))
    assert executable == PUBLIC_FUNCTIONS
    # docs/verify.md (privileges.public) names each of them.
    verify_md = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text(encoding="utf-8")
    row = next(line for line in verify_md.splitlines() if line.startswith("| `privileges.public` |"))
    named = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
    assert {f.split("(")[0].removeprefix("audit.") for f in PUBLIC_FUNCTIONS} <= named


def test_reader_may_read_the_log_only(pg: Server, installed_db: str, su: Conn,
                                      make_role: MakeRole, log_tables: list[str]) -> None:
    analyst = make_role()
    su.execute(sql.SQL("GRANT {} TO {}").format(ident(READER), ident(analyst)))
    with connect(pg.dsn(dbname(installed_db), user=analyst)) as conn:
        assert scalar(conn, "SELECT count(*) FROM audit.events") == len(snapshot(su))
        assert scalar(conn, "SELECT count(*) FROM audit.tables") == 1
        expect_error(conn, "INSERT INTO audit.events (action) VALUES ('forged')", sqlstate="42501")
        attempt_all(conn, log_tables, refused)


def test_owner_and_reader_cannot_log_in(pg: Server, installed_db: str, su: Conn) -> None:
    assert su.execute("SELECT rolname, rolcanlogin, rolsuper FROM pg_roles"
                      " WHERE rolname IN (%s, %s) ORDER BY 1", (OWNER, READER)).fetchall() == [
        {"rolname": OWNER, "rolcanlogin": False, "rolsuper": False},
        {"rolname": READER, "rolcanlogin": False, "rolsuper": False}]
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(pg.dsn(dbname(installed_db), user=OWNER)).close()


def test_log_and_functions_belong_to_the_owner(su: Conn) -> None:
    owners = set(column(
        su, "SELECT DISTINCT relowner::regrole::text FROM pg_class"
            " WHERE relnamespace = 'audit'::regnamespace"
            " UNION SELECT DISTINCT proowner::regrole::text FROM pg_proc"
            " WHERE pronamespace = 'audit'::regnamespace"
            " UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'audit'"))
    assert owners == {OWNER}
