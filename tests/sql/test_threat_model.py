"""docs/security.md, row by row: what each role can do, what it cannot, and
what `auditsql verify` says about it, on an installation a superuser made
(with the event triggers)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import tuple_row

from auditsql import checks, integrity
from auditsql.render import event_trigger_name
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import (
    ADMIN,
    OPERATOR,
    OWNER,
    READER,
    AppRole,
    Conn,
    attach,
    brief,
    connect,
    count_events,
    dbname,
    events,
    expect_error,
    ident,
    month_partition,
    quiet_ddl,
    run,
    scalar,
    seal,
    triggers,
)

WRITER = "auditsql_writer"
PRIVILEGES = ("privileges.writers", "privileges.readers", "privileges.public")
REFUSED = "refused: it would stop or weaken auditing"


def verify(dsn: str) -> dict[str, checks.Result]:
    """What `auditsql verify` would report, by check id."""
    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        with conn.transaction(), conn.cursor() as cur:
            return {r.id: r for r in checks.run(checks.Context(cur, "audit", dsn=dsn))}


def grant(su: Conn, role: str, member: str) -> None:
    su.execute(sql.SQL("GRANT {} TO {}").format(ident(role), ident(member)))


@pytest.fixture
def orders(su: Conn, app_conn: Conn) -> str:
    """An application table, owned by the application role, attached, and a
    partitioned one."""
    run(app_conn, "CREATE TABLE public.orders (id int PRIMARY KEY, status text)",
        "CREATE TABLE public.parts (id int PRIMARY KEY) PARTITION BY RANGE (id)",
        "CREATE TABLE public.parts_1 PARTITION OF public.parts FOR VALUES FROM (0) TO (100)",
        "INSERT INTO public.orders VALUES (1, 'new')")
    attach(su, "public.orders")
    attach(su, "public.parts")
    return "public.orders"


@pytest.fixture
def role_conn(pg: Server, installed_db: str, make_role: MakeRole,
              su: Conn) -> Iterator[object]:
    """Factory: a connection as a new login role made a member of ``roles``."""
    opened: list[Conn] = []

    def make(*roles: str) -> tuple[str, Conn]:
        name = make_role()
        for role in roles:
            grant(su, role, name)
        conn = connect(pg.dsn(dbname(installed_db), user=name))
        opened.append(conn)
        return name, conn

    yield make
    for conn in opened:
        conn.close()


def test_an_application_role(su: Conn, app: AppRole, app_conn: Conn, orders: str,
                             installed_db: str) -> None:
    before = count_events(su)
    # can: write, every change captured, with the actor it names
    with app_conn.transaction():
        app_conn.execute("SELECT audit.set_context('anyone', NULL, 'admin')")
        run(app_conn, "UPDATE public.orders SET status = 'paid'", "DELETE FROM public.orders")
    assert [(e["action"], e["actor_id"]) for e in events(su, orders)] == [
        ("updated", "anyone"), ("deleted", "anyone")]
    # can: ALTER TABLE (capture refreshed at once); detach and attach a
    # partition, both recorded
    run(app_conn, "ALTER TABLE public.orders ADD COLUMN note text",
        "ALTER TABLE public.parts DETACH PARTITION public.parts_1",
        "ALTER TABLE public.parts ATTACH PARTITION public.parts_1 FOR VALUES FROM (0) TO (100)")
    assert scalar(su, "SELECT prosrc = audit.capture_source('public.orders') FROM pg_proc"
                      " WHERE proname = 'capture_' || 'public.orders'::regclass::oid")
    assert [e["action"] for e in events(su, "public.parts", actions=[
        "partition_detached", "partition_reattached"])] == [
        "partition_detached", "partition_reattached"]
    # cannot: read or write the log, stop capture, borrow audit functions
    app_conn.execute("SET auditsql.permit_ddl = on")
    for statement in ("SELECT count(*) FROM audit.events",
                      "INSERT INTO audit.events (category, action) VALUES ('data', 'created')",
                      "SELECT audit.attach('public.orders')", "SELECT audit.detach('public.orders')",
                      "SELECT audit.record_ddl('x', ARRAY['y'])"):
        expect_error(app_conn, statement, sqlstate="42501")
    for statement in ("ALTER TABLE public.orders DISABLE TRIGGER auditsql_capture_row",
                      "DROP TRIGGER auditsql_capture_row ON public.orders",
                      "ALTER TRIGGER auditsql_capture_row ON public.orders RENAME TO quiet",
                      "COMMENT ON TRIGGER auditsql_capture_row ON public.orders IS 'x'",
                      # its own capture function (it may run it, for partitions),
                      # but not as attach makes it: refused
                      sql.SQL("CREATE OR REPLACE TRIGGER auditsql_capture_row AFTER INSERT OR"
                              " DELETE OR UPDATE ON public.parts FOR EACH ROW WHEN (false)"
                              " EXECUTE FUNCTION audit.{}()").format(ident(
                                  f"capture_{scalar(su, 'SELECT %s::regclass::oid', ('public.parts',))}"))):
        expect_error(app_conn, statement, sqlstate="42501", contains=REFUSED)
    expect_error(app_conn, "CREATE TRIGGER auditsql_capture_insert AFTER INSERT ON public.orders"
                           " FOR EACH STATEMENT EXECUTE FUNCTION audit.guard()", sqlstate="42501")
    assert triggers(su, orders) == [("auditsql_capture_row", "A"),
                                    ("auditsql_capture_truncate", "A")]
    assert count_events(su) == before + 4  # two writes, a detach, a re-attach
    # can: add a partition, whose writes are captured as the table's
    run(app_conn, "CREATE TABLE public.parts_2 PARTITION OF public.parts"
                  " FOR VALUES FROM (100) TO (200)",
        "INSERT INTO public.parts VALUES (150)", "INSERT INTO public.parts_2 VALUES (151)")
    assert ("auditsql_capture_row", "A") in triggers(su, "public.parts_2")
    assert brief(events(su, "public.parts")) == [("created", "150"), ("created", "151")]
    assert verify(installed_db)["triggers.capture"].status == "pass"
    # verify: a capture trigger missing, disabled or changed behind the
    # event triggers' back fails (each mended by attach)
    capture_fn = ident(f"capture_{scalar(su, 'SELECT %s::regclass::oid', (orders,))}")
    for change, said in (
            ("DROP TRIGGER auditsql_capture_row ON public.orders", "missing"),
            ("ALTER TABLE public.orders DISABLE TRIGGER auditsql_capture_row", "disabled"),
            (sql.SQL("CREATE OR REPLACE TRIGGER auditsql_capture_row AFTER INSERT OR UPDATE"
                     " ON public.orders FOR EACH ROW EXECUTE FUNCTION audit.{}()").format(
                capture_fn), "not as attach makes it")):
        quiet_ddl(su, change)
        found = verify(installed_db)["triggers.capture"]
        assert found.status == "fail", (said, found)
        assert f"auditsql_capture_row on public.orders: {said}" in found.details, found
        attach(su, orders)
        assert verify(installed_db)["triggers.capture"].status == "pass", said
    # verify: a capture trigger dropped and made again behind the event
    # triggers' back fails until attach records it
    quiet_ddl(su, "DROP TRIGGER auditsql_capture_row ON public.orders",
              sql.SQL("CREATE TRIGGER auditsql_capture_row AFTER INSERT OR DELETE OR UPDATE"
                      " ON public.orders FOR EACH ROW EXECUTE FUNCTION audit.{}()").format(
                  ident(f"capture_{scalar(su, 'SELECT %s::regclass::oid', (orders,))}")),
              "ALTER TABLE public.orders ENABLE ALWAYS TRIGGER auditsql_capture_row")
    assert verify(installed_db)["triggers.capture"].status == "fail"
    attach(su, orders)
    assert verify(installed_db)["triggers.capture"].status == "pass"
    assert events(su, orders, actions=["capture_triggers_replaced"])


def test_a_writer(su: Conn, role_conn, orders: str) -> None:  # noqa: ANN001
    name, conn = role_conn(WRITER)
    with conn.transaction():
        conn.execute("SELECT audit.set_context('u-7', 'eve@example.com')")
        conn.execute("SELECT audit.log_event('login', 'user', '7', '{\"via\": \"sso\"}')")
    [event] = events(su, actions=["login"])
    assert (event["category"], event["actor_id"], event["db_user"]) == ("auth", "u-7", name)
    assert scalar(su, "SELECT occurred_at >= now() - interval '1 minute' FROM audit.events"
                      " WHERE action = 'login'")
    for action in ("created", "attached", "retention_applied", "audit_ddl"):
        expect_error(conn, "SELECT audit.log_event(%s)", (action,), sqlstate="42501")
    expect_error(conn, "SELECT count(*) FROM audit.events", sqlstate="42501")
    # cannot choose an event's time, transaction, database user or
    # category: log_event takes none of them, and no other way in is open
    assert scalar(su, "SELECT array_agg(proargnames) FROM pg_proc"
                      " WHERE proname = 'log_event' AND pronamespace = 'audit'::regnamespace"
                  ) == [["action", "entity_type", "entity_id", "details"]]
    for argument, value in (("occurred_at", "2000-01-01"), ("txid", "1"),
                            ("db_user", "postgres"), ("category", "auth")):
        expect_error(conn, sql.SQL("SELECT audit.log_event('cart_checkout', {} => {})").format(
            ident(argument), sql.Literal(value)), sqlstate="42883")
    for statement in ("INSERT INTO audit.events (category, action, occurred_at, txid, db_user)"
                      " VALUES ('auth', 'login', '2000-01-01', 1, 'postgres')",
                      "INSERT INTO audit.events (category, action) VALUES ('auth', 'login')"):
        expect_error(conn, statement, sqlstate="42501")
    with conn.transaction():
        started, txid = scalar(conn, "SELECT now()"), scalar(conn, "SELECT txid_current()")
        event_id = scalar(conn, "SELECT audit.log_event('cart_checkout', 'cart', '9')")
        ended = scalar(conn, "SELECT clock_timestamp()")
    [checkout] = su.execute("SELECT * FROM audit.events WHERE id = %s", (event_id,)).fetchall()
    assert (checkout["category"], checkout["txid"], checkout["db_user"]) == ("app", txid, name)
    assert started <= checkout["occurred_at"] <= ended


def test_a_reader(su: Conn, role_conn, orders: str, installed_db: str) -> None:  # noqa: ANN001
    _, conn = role_conn(READER)
    assert scalar(conn, "SELECT count(*) FROM audit.history WHERE entity_type = %s",
                  (orders,)) == scalar(su, "SELECT count(*) FROM audit.events"
                                           " WHERE entity_type = %s", (orders,)) > 0
    assert scalar(conn, "SELECT count(*) FROM audit.tables") == 2
    for statement in ("INSERT INTO audit.events (category, action) VALUES ('data', 'created')",
                      "SELECT audit.set_retention('saas')", "SELECT * FROM audit.maintain()",
                      "SELECT audit.place_hold('public.orders', '1', 'r')"):
        expect_error(conn, statement, sqlstate="42501")
    # verify: anyone else's read privilege on the log fails
    su.execute("GRANT SELECT ON audit.events TO PUBLIC")
    assert verify(installed_db)["privileges.readers"].status == "fail"
    su.execute("REVOKE SELECT ON audit.events FROM PUBLIC")
    assert verify(installed_db)["privileges.readers"].status == "pass"


def test_an_operator(su: Conn, role_conn, app: AppRole,  # noqa: ANN001
                     installed_db: str) -> None:
    name, conn = role_conn(OPERATOR)
    su.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
        ident(dbname(installed_db)), ident(name)))
    run(conn, "CREATE SCHEMA ops", "CREATE TABLE ops.mine (id int PRIMARY KEY)")
    run(su, "CREATE TABLE public.theirs (id int PRIMARY KEY)")
    run(conn, "SELECT audit.attach('ops.mine')", "INSERT INTO ops.mine VALUES (1)",
        "SELECT audit.detach('ops.mine')")
    assert brief(events(su, "ops.mine", actions=["attached", "created", "detached"])) == [
        ("attached", None), ("created", "1"), ("detached", None)]
    expect_error(conn, "SELECT audit.attach('public.theirs')", sqlstate="42501",
                 contains="only its owner")
    conn.execute("SET auditsql.permit_ddl = on")
    partition = month_partition(su)
    for statement in (f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement",
                      "INSERT INTO audit.events (category, action) VALUES ('data', 'created')",
                      f"DELETE FROM {partition}",
                      sql.SQL("GRANT DELETE ON audit.events TO {}").format(ident(name)),
                      "CREATE TABLE audit.mine (id int)"):
        expect_error(conn, statement, sqlstate="42501")
    assert scalar(su, "SELECT pg_has_role(%s, %s, 'MEMBER')", (name, OWNER)) is False


def test_an_admin(su: Conn, role_conn, app: AppRole, app_conn: Conn, orders: str,  # noqa: ANN001
                  installed_db: str) -> None:
    name, conn = role_conn(ADMIN)
    run(conn, "SELECT audit.set_retention('financial')",
        "SELECT audit.place_hold('public.orders', '1', 'Case 7', p_future => true)",
        "SELECT * FROM audit.maintain()", "SELECT * FROM audit.apply_retention()")
    assert [(e["action"], e["db_user"]) for e in events(
        su, actions=["retention_policy_set", "legal_hold_placed"], source="audit.events")] == [
        ("retention_policy_set", name), ("legal_hold_placed", name)]
    partition = month_partition(su)
    for statement in (f"DELETE FROM {partition}", "UPDATE audit.events SET action = 'x'",
                      "INSERT INTO audit.events (category, action) VALUES ('data', 'created')",
                      f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement"):
        expect_error(conn, statement, sqlstate="42501")
    # DDL past the event triggers on what it owns is recorded
    grant(su, ADMIN, app.name)
    app_conn.execute("ALTER TABLE public.orders DISABLE TRIGGER auditsql_capture_row")
    [ddl] = events(su, actions=["audit_ddl"], source="audit.events")
    assert (ddl["db_user"], ddl["after"]["objects"]) == (
        app.name, ["auditsql_capture_row on public.orders left disabled"])
    app_conn.execute("ALTER TABLE public.orders ENABLE ALWAYS TRIGGER auditsql_capture_row")
    # verify lists the members of the admin role
    members = verify(installed_db)["roles.members"]
    assert members.status == "pass"
    assert f"{name}: member of {ADMIN}" in members.details
    # can: release a legal hold and change the settings, each recorded
    run(conn, "SELECT audit.release_hold('public.orders', '1', 'Case 7 closed')",
        "SELECT audit.configure(p_require_actor => true)",
        "SELECT audit.configure(p_require_actor => false)")
    assert scalar(su, "SELECT count(*) FROM audit.legal_holds") == 0
    assert [(e["action"], e["db_user"], e["entity_id"]) for e in events(
        su, "public.orders", actions=["legal_hold_released"], source="audit.events")] == [
        ("legal_hold_released", name, "1")]
    assert [(e["action"], e["db_user"], e["after"]["require_actor"]) for e in events(
        su, actions=["configured"], source="audit.events")] == [
        ("configured", name, True), ("configured", name, False)]


def test_a_login_member_of_the_owner_role(su: Conn, role_conn,  # noqa: ANN001
                                          installed_db: str) -> None:
    name, conn = role_conn(OWNER)
    # can: insert events as it likes (it holds the owner's INSERT)
    conn.execute("INSERT INTO audit.events (category, action, actor_id)"
                 " VALUES ('data', 'created', 'forged')")
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE actor_id = 'forged'") == 1
    # cannot: lift a guard or change audit objects, directly or as the owner
    partition = month_partition(su)
    conn.execute("SET auditsql.permit_ddl = on")
    for role in (None, OWNER):
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(ident(role)))
        for statement in (f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement",
                          "DROP TRIGGER auditsql_guard_row ON audit.events",
                          "CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger"
                          " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"):
            expect_error(conn, statement, sqlstate="42501", contains=REFUSED)
    # verify: it is listed, and warned of
    members = verify(installed_db)["roles.members"]
    assert members.status == "warn" and name in members.message
    assert f"{name}: member of {OWNER} (can write the log)" in members.details
    # can: grant privileges on audit objects, with the event triggers in
    # force; verify reports each grant (privileges.*)
    conn.execute("RESET ROLE")
    assert {c: verify(installed_db)[c].status for c in PRIVILEGES} == dict.fromkeys(
        PRIVILEGES, "pass")
    run(conn, sql.SQL("GRANT SELECT ON audit.events TO {}").format(ident(name)),
        "GRANT EXECUTE ON FUNCTION audit.seal(integer) TO PUBLIC",
        sql.SQL("GRANT UPDATE ON audit.settings TO {}").format(ident(name)))
    found = verify(installed_db)
    assert {c: found[c].status for c in PRIVILEGES} == dict.fromkeys(PRIVILEGES, "fail")
    assert any(name in d for d in found["privileges.readers"].details), found["privileges.readers"]
    assert any("seal" in d for d in found["privileges.public"].details), found["privileges.public"]
    assert any(name in d for d in found["privileges.writers"].details), found["privileges.writers"]


def test_a_superuser(su: Conn, orders: str, installed_db: str,
                     make_role: MakeRole) -> None:
    partition = month_partition(su)
    first = scalar(su, "SELECT min(id) FROM audit.events")
    # can, and it is recorded: lift a guard and edit an event
    with su.transaction():
        run(su, f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement,"
                " DISABLE TRIGGER auditsql_guard_row",
            sql.SQL("UPDATE {} SET actor_id = 'edited' WHERE id = {}").format(
                sql.SQL(partition), sql.Literal(first)),
            f"ALTER TABLE {partition} ENABLE ALWAYS TRIGGER auditsql_guard_statement,"
            " ENABLE ALWAYS TRIGGER auditsql_guard_row")
    [ddl, _] = events(su, actions=["audit_ddl"], source="audit.events")
    assert ddl["after"]["objects"] == [f"ALTER TABLE {partition}"]
    # can, unrecorded, with the flag: and verify does not see an edit undone
    before = count_events(su)
    quiet_ddl(su, f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement,"
                  " DISABLE TRIGGER auditsql_guard_row",
              sql.SQL("DELETE FROM {} WHERE id = {}").format(sql.SQL(partition),
                                                            sql.Literal(first)),
              f"ALTER TABLE {partition} ENABLE ALWAYS TRIGGER auditsql_guard_statement,"
              " ENABLE ALWAYS TRIGGER auditsql_guard_row")
    assert count_events(su) == before - 1
    assert {r.status for r in verify(installed_db).values()} <= {"pass", "warn"}
    # what stays changed, verify sees
    baseline = {c: r.status for c, r in verify(installed_db).items()}
    quiet_ddl(su, f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement")
    assert verify(installed_db)["triggers.guards"].status == "fail"
    quiet_ddl(su, f"ALTER TABLE {partition} ENABLE ALWAYS TRIGGER auditsql_guard_statement")
    # ... a replaced audit function, a disabled event trigger, a privilege on
    # the log, a login role in the owner role: each seen, until put back
    guard = scalar(su, "SELECT pg_get_functiondef('audit.guard()'::regprocedure)")
    ddl_trigger = event_trigger_name("audit", "ddl")
    member = make_role()
    for change, put_back, check, status in (
            ("CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger LANGUAGE plpgsql"
             " AS $$ BEGIN RETURN NULL; END $$", guard, "objects.fingerprints", "fail"),
            (f"ALTER EVENT TRIGGER {ddl_trigger} DISABLE",
             f"ALTER EVENT TRIGGER {ddl_trigger} ENABLE ALWAYS", "triggers.event", "fail"),
            ("GRANT DELETE ON audit.events TO PUBLIC",
             "REVOKE DELETE ON audit.events FROM PUBLIC", "privileges.writers", "fail"),
            (sql.SQL("GRANT SELECT ON audit.events TO {}").format(ident(member)),
             sql.SQL("REVOKE SELECT ON audit.events FROM {}").format(ident(member)),
             "privileges.readers", "fail"),
            (sql.SQL("GRANT {} TO {}").format(ident(OWNER), ident(member)),
             sql.SQL("REVOKE {} FROM {}").format(ident(OWNER), ident(member)),
             "roles.members", "warn")):
        quiet_ddl(su, change)
        found = verify(installed_db)[check]
        assert found.status == status, (change, found)
        quiet_ddl(su, put_back)
        assert verify(installed_db)[check].status == baseline[check], (put_back, check)
    assert {c: r.status for c, r in verify(installed_db).items()} == baseline


@contextmanager
def restored_with_paid_as_void(pg: Server, installed_db: str) -> Iterator[str]:
    """The DSN of a copy of *installed_db* restored from its dump, in which
    every event's "paid" status was edited to "void"; skips without the
    server's own pg_dump and psql."""
    if pg.cluster is None or shutil.which("pg_dump", path=str(pg.cluster.bindir)) is None:
        pytest.skip("needs the server's own pg_dump and psql (a throwaway cluster)")
    bindir = pg.cluster.bindir
    dump = subprocess.run([str(bindir / "pg_dump"), "--dbname", installed_db],
                          capture_output=True, text=True, check=True).stdout
    edited = dump.replace('"status": "paid"', '"status": "void"')
    assert edited != dump
    copy = unique_name("auditsql_t")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident(copy)))
    try:
        restored = pg.dsn(copy)
        done = subprocess.run([str(bindir / "psql"), "--dbname", restored, "-q",
                               "-v", "ON_ERROR_STOP=1"], input=edited,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        yield restored
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(copy)))


def test_someone_with_a_backup(pg: Server, su: Conn, orders: str, installed_db: str,
                               app_conn: Conn) -> None:
    """Edited in a dump and restored, an event reads as if written so, and
    verify passes: nothing inside the database can tell."""
    app_conn.execute("UPDATE public.orders SET status = 'paid'")
    with restored_with_paid_as_void(pg, installed_db) as restored:
        with connect(restored) as conn:
            assert scalar(conn, "SELECT after ->> 'status' FROM audit.events"
                                " WHERE action = 'updated'") == "void"
        assert {r.status for r in verify(restored).values()} <= {"pass", "warn"}



def verify_integrity(conn: Conn, digests: list | None = None) -> dict[str, checks.Result]:
    """What `auditsql verify --integrity [--digest ...]` would report, by
    check id, seen from `conn` (inside its transaction, if it is in one)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        ctx = checks.Context(cur, "audit", integrity=True, digests=digests or [])
        found = (checks.REGISTRY[c].run(ctx) for c in ("integrity.chain", "integrity.digests"))
        return {r.id: r for r in found if r is not None}


def test_a_superuser_once_events_are_sealed(su: Conn, orders: str, app_conn: Conn) -> None:
    app_conn.execute("UPDATE public.orders SET status = 'paid'")
    su.execute("SELECT audit.log_event('login', 'user', g::text) FROM generate_series(1, 4) AS g")
    seal(su, 2)
    with su.cursor(row_factory=tuple_row) as cur:
        kept = integrity.head(cur, "audit")
    assert verify_integrity(su, [kept])["integrity.chain"].status == "pass"
    partition = month_partition(su)
    ids = [r["id"] for r in su.execute("SELECT id FROM audit.events ORDER BY id LIMIT 4")]
    lift = (f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement,"
            " DISABLE TRIGGER auditsql_guard_row",
            "ALTER TABLE audit.events DISABLE TRIGGER auditsql_guard_statement")
    put_back = (f"ALTER TABLE {partition} ENABLE ALWAYS TRIGGER auditsql_guard_statement,"
                " ENABLE ALWAYS TRIGGER auditsql_guard_row",
                "ALTER TABLE audit.events ENABLE ALWAYS TRIGGER auditsql_guard_statement")
    for change, kind in (
            (f"UPDATE audit.events SET actor_id = 'edited' WHERE id = {ids[0]}", "edited"),
            (f"DELETE FROM audit.events WHERE id = {ids[1]}", "deleted"),
            (f"INSERT INTO audit.events (id, category, action) VALUES ({ids[2]}, 'app', 'x')",
             "inserted"),
            (f"UPDATE audit.events SET id = CASE id WHEN {ids[2]} THEN {ids[3]} ELSE {ids[2]} END"
             f" WHERE id IN ({ids[2]}, {ids[3]})", "reordered")):
        with su.transaction():
            quiet_ddl(su, *lift, change, *put_back)
            found = verify_integrity(su)["integrity.chain"]
            assert found.status == "fail" and f": {kind}" in found.message, found
            raise psycopg.Rollback()
    assert verify_integrity(su)["integrity.chain"].status == "pass"
    # The chain rebuilt over an edit is consistent in itself; the digest tells.
    quiet_ddl(su, *lift, f"UPDATE audit.events SET actor_id = 'edited' WHERE id = {ids[0]}",
              *put_back,
              "ALTER TABLE audit.seal_blocks DISABLE TRIGGER auditsql_guard_statement",
              "DELETE FROM audit.seal_blocks", "UPDATE audit.seal_head SET block = 0,"
              " hash = decode(repeat('00', 32), 'hex'), sealed_to = 0",
              "ALTER TABLE audit.seal_blocks ENABLE ALWAYS TRIGGER auditsql_guard_statement")
    seal(su, 2)
    assert verify_integrity(su)["integrity.chain"].status == "pass"
    assert verify_integrity(su, [kept])["integrity.digests"].status == "fail"


def test_someone_with_a_backup_once_events_are_sealed(pg: Server, su: Conn, orders: str,
                                                      installed_db: str, app_conn: Conn) -> None:
    """Edited in a dump and restored, a sealed event no longer matches its block."""
    app_conn.execute("UPDATE public.orders SET status = 'paid'")
    seal(su)
    with restored_with_paid_as_void(pg, installed_db) as restored:
        with connect(restored) as conn:
            found = verify_integrity(conn)["integrity.chain"]
        assert found.status == "fail" and ": edited" in found.message, found
