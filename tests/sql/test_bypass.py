"""Auditing cannot be stopped quietly: the event triggers a superuser's
install creates refuse, to every role but an audit administrator or a
superuser, the DDL that would disable, drop or replace capture triggers or
change audit objects, and record it in the log when those run it; attach,
detach and install keep working."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from auditsql.errors import PermissionDenied
from auditsql.installer import install
from auditsql.render import Settings, guard_schema_name
from tests.harness.databases import unique_name
from tests.harness.roles import MakeRole, drop_role
from tests.harness.server import Server
from tests.sql.sqltools import (
    ADMIN,
    OPERATOR,
    OWNER,
    AppRole,
    Conn,
    attach,
    brief,
    connect,
    dbname,
    detach,
    events,
    expect_error,
    ident,
    month_partition,
    run,
    scalar,
    triggers,
)

REFUSED = "refused: it would stop or weaken auditing"

ALWAYS = [("auditsql_capture_delete", "A"), ("auditsql_capture_insert", "A"),
          ("auditsql_capture_truncate", "A"), ("auditsql_capture_update", "A")]

# DDL an application role may run on its own tables, but not on their audit
# triggers. Each must fail and leave every trigger as attach made it.
TAMPERING = [
    "ALTER TABLE public.items DISABLE TRIGGER auditsql_capture_insert",
    "ALTER TABLE public.items DISABLE TRIGGER ALL",
    "ALTER TABLE public.items DISABLE TRIGGER USER",
    "ALTER TABLE public.items ENABLE TRIGGER auditsql_capture_update",
    "ALTER TABLE public.items ENABLE REPLICA TRIGGER auditsql_capture_delete",
    "ALTER TABLE public.items ADD COLUMN extra int,"
    " DISABLE TRIGGER auditsql_capture_truncate",
    "DROP TRIGGER auditsql_capture_insert ON public.items",
    "ALTER TRIGGER auditsql_capture_insert ON public.items RENAME TO quiet",
    "COMMENT ON TRIGGER auditsql_capture_insert ON public.items IS 'auditsql 0.1.0 sha256:0'",
    "CREATE OR REPLACE TRIGGER auditsql_capture_insert AFTER INSERT ON public.items"
    " FOR EACH STATEMENT EXECUTE FUNCTION public.noop()",
    "CREATE TRIGGER auditsql_capture_extra AFTER INSERT ON public.items"
    " FOR EACH STATEMENT EXECUTE FUNCTION public.noop()",
    "ALTER TABLE public.parts_1 DISABLE TRIGGER auditsql_capture_row",
    "ALTER TABLE public.parts DISABLE TRIGGER auditsql_capture_row",
]

# DDL on audit objects, refused to a member of the owner role who is no
# audit administrator (it would otherwise be allowed, as the owner).
AUDIT_OBJECT_DDL = [
    "ALTER TABLE audit.events DISABLE TRIGGER auditsql_guard_statement",
    "DROP TRIGGER auditsql_guard_row ON audit.events",
    "ALTER FUNCTION audit.capture_truncate(oid, oid) SECURITY DEFINER",
    "ALTER FUNCTION audit.attach_prepare(regclass, text[], text, text[], text[], jsonb, boolean,"
    " boolean) SECURITY INVOKER",
    "CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RETURN NULL; END $$",
    "COMMENT ON FUNCTION audit.guard() IS 'auditsql 0.1.0 sha256:0'",
    "DROP TABLE audit.events_default",
    "CREATE TABLE audit.extra (id int)",
    "COMMENT ON SCHEMA audit IS 'elsewhere'",
    "DROP SCHEMA audit CASCADE",
]


@pytest.fixture
def audited(su: Conn, app_conn: Conn) -> Conn:
    """Tables owned by the application role, attached by the superuser."""
    run(
        app_conn,
        "CREATE TABLE public.items (id int PRIMARY KEY, note text)",
        "CREATE TABLE public.parts (id int PRIMARY KEY) PARTITION BY RANGE (id)",
        "CREATE TABLE public.parts_1 PARTITION OF public.parts FOR VALUES FROM (0) TO (100)",
        "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN NULL; END $$",
    )
    attach(su, "public.items", capture="statement")  # four triggers to tamper with
    attach(su, "public.parts")
    return su


def trigger_states(conn: Conn) -> dict[str, list[tuple[str, str]]]:
    return {table: triggers(conn, table)
            for table in ("public.items", "public.parts", "public.parts_1")}


def refused(conn: Conn, statement: str) -> None:
    expect_error(conn, statement, sqlstate="42501", contains=REFUSED)


def writes_are_recorded(su: Conn, app_conn: Conn) -> None:
    before = len(events(su))
    run(app_conn, "INSERT INTO public.items SELECT coalesce(max(id), 0) + 1 FROM public.items",
        "INSERT INTO public.parts SELECT coalesce(max(id), 0) + 1 FROM public.parts")
    assert len(events(su)) == before + 2


def test_the_table_owner_cannot_stop_auditing(audited: Conn, app_conn: Conn) -> None:
    before = trigger_states(audited)
    assert before["public.items"] == ALWAYS
    for statement in TAMPERING:
        refused(app_conn, statement)
    assert trigger_states(audited) == before
    writes_are_recorded(audited, app_conn)


def test_a_refusal_names_what_and_who_may(audited: Conn, app_conn: Conn) -> None:
    error = expect_error(app_conn, TAMPERING[0], sqlstate="42501")
    assert "auditsql_capture_insert on public.items left disabled" in str(error)
    assert error.diag.message_hint and ADMIN in error.diag.message_hint


def test_the_flag_counts_for_nobody_outside_the_owner_role(audited: Conn, app_conn: Conn) -> None:
    """auditsql.permit_ddl is how attach and install get past the event
    triggers; an application role may set it, and gains nothing."""
    app_conn.execute("SET auditsql.permit_ddl = on")
    refused(app_conn, TAMPERING[0])
    app_conn.execute("RESET auditsql.permit_ddl")
    with pytest.raises(psycopg.Error, match=REFUSED):
        with app_conn.transaction():
            app_conn.execute("SELECT set_config('auditsql.permit_ddl', 'on', true)")
            app_conn.execute(TAMPERING[6])
    for call in ("SELECT audit.attach('public.items')", "SELECT audit.detach('public.items')",
                 "SELECT audit.detach_prepare('public.items')"):
        expect_error(app_conn, call, sqlstate="42501")
    assert triggers(audited, "public.items") == ALWAYS


def test_ordinary_ddl_still_works(audited: Conn, app_conn: Conn) -> None:
    run(
        app_conn,
        "ALTER TABLE public.items ADD COLUMN extra int",
        "ALTER TABLE public.items ENABLE ALWAYS TRIGGER auditsql_capture_insert",
        "CREATE INDEX ON public.items (note)",
        "CREATE TABLE public.other (id int PRIMARY KEY)",
        "CREATE TRIGGER mine AFTER INSERT ON public.other FOR EACH ROW"
        " EXECUTE FUNCTION public.noop()",
        "ALTER TABLE public.other DISABLE TRIGGER mine",
        "DROP TRIGGER mine ON public.other",
        "DROP TABLE public.other",
    )
    assert triggers(audited, "public.items") == ALWAYS
    run(app_conn, "DROP TABLE public.items")  # with its triggers: the table is gone
    assert scalar(audited, "SELECT to_regclass('public.items') IS NULL")


def audit_ddl(conn: Conn) -> list[dict]:
    """The `audit_ddl` events: what was done to auditing, by whom."""
    return [e["after"] | {"db_user": e["db_user"]}
            for e in events(conn, actions=["audit_ddl"], source="audit.events")]


def test_an_audit_administrator_may_and_it_is_recorded(
        audited: Conn, app: AppRole, app_conn: Conn) -> None:
    audited.execute(sql.SQL("GRANT {} TO {}").format(ident(ADMIN), ident(app.name)))
    try:
        with app_conn.transaction():
            run(app_conn, "ALTER TABLE public.items DISABLE TRIGGER auditsql_capture_insert",
                "DROP TRIGGER auditsql_capture_update ON public.items")
    finally:
        audited.execute(sql.SQL("REVOKE {} FROM {}").format(ident(ADMIN), ident(app.name)))
    assert audit_ddl(audited) == [
        {"command": "ALTER TABLE", "db_user": app.name, "role": "none",
         "objects": ["auditsql_capture_insert on public.items left disabled"]},
        {"command": "DROP TRIGGER", "db_user": app.name, "role": "none",
         "objects": ["trigger auditsql_capture_update on public.items"]}]
    assert triggers(audited, "public.items") == [
        ("auditsql_capture_delete", "A"), ("auditsql_capture_insert", "D"),
        ("auditsql_capture_truncate", "A")]
    attach(audited, "public.items")
    assert triggers(audited, "public.items") == ALWAYS


def test_a_superuser_may_and_it_is_recorded(audited: Conn) -> None:
    """Lifting a guard on the log, too, leaves a system event in the same
    transaction; as install and maintenance do, a superuser may set
    auditsql.permit_ddl to keep it out of the log (see docs/security.md)."""
    partition = month_partition(audited)
    with audited.transaction():
        run(audited, "ALTER TABLE public.items DISABLE TRIGGER auditsql_capture_insert",
            f"ALTER TABLE {partition} DISABLE TRIGGER auditsql_guard_statement",
            f"ALTER TABLE {partition} ENABLE ALWAYS TRIGGER auditsql_guard_statement")
    assert [e["objects"] for e in audit_ddl(audited)] == [
        ["auditsql_capture_insert on public.items left disabled"],
        [f"ALTER TABLE {partition}"], [f"ALTER TABLE {partition}"]]
    attach(audited, "public.items")
    assert triggers(audited, "public.items") == ALWAYS


def test_a_superuser_changing_an_audit_object_is_recorded(audited: Conn) -> None:
    """Not only a guard lifted: a function of the audit schema replaced by a
    superuser (a guard that lets everything through) is an `audit_ddl`
    event of the same transaction (docs/security.md)."""
    with audited.transaction():
        txid = scalar(audited, "SELECT txid_current()")
        audited.execute("CREATE OR REPLACE FUNCTION audit.guard() RETURNS trigger"
                        " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
    [ddl] = events(audited, actions=["audit_ddl"], source="audit.events")
    assert (ddl["txid"], ddl["after"]["command"]) == (txid, "CREATE FUNCTION")
    assert ddl["after"]["objects"] == ["CREATE FUNCTION audit.guard()"]


def test_detaching_a_partition_is_recorded(audited: Conn, app_conn: Conn) -> None:
    """DETACH PARTITION by the table's owner (no audit role): the writes to
    the detached table are not captured, but the log says when it left the
    tree and when it came back, in the same transactions."""
    run(app_conn, "INSERT INTO public.parts VALUES (1)",
        "ALTER TABLE public.parts DETACH PARTITION public.parts_1",
        "INSERT INTO public.parts_1 VALUES (2)", "UPDATE public.parts_1 SET id = 3 WHERE id = 1",
        "ALTER TABLE public.parts ATTACH PARTITION public.parts_1 FOR VALUES FROM (0) TO (100)",
        "INSERT INTO public.parts VALUES (4)")
    recorded = [(e["action"], e["entity_id"], (e["after"] or {}).get("partition"))
                for e in events(audited, "public.parts", actions=[
                    "created", "updated", "partition_detached", "partition_reattached"])]
    assert recorded == [("created", "1", None), ("partition_detached", None, "public.parts_1"),
                        ("partition_reattached", None, "public.parts_1"), ("created", "4", None)]
    assert triggers(audited, "public.parts_1") == [("auditsql_capture_row", "A"),
                                                   ("auditsql_capture_truncate", "A")]


def test_dropping_a_partition_is_recorded(audited: Conn, app_conn: Conn) -> None:
    """README: "dropping a partition of an audited table is recorded as a
    system event": DROP TABLE of a partition by the table's owner (no audit
    role) leaves one `partition_dropped` event, in the same transaction."""
    app_conn.execute("INSERT INTO public.parts VALUES (1)")
    with app_conn.transaction():
        app_conn.execute("DROP TABLE public.parts_1")
        txid = scalar(app_conn, "SELECT txid_current()")
    [dropped] = events(audited, None, actions=[
        "partition_dropped", "partition_detached", "capture_triggers_replaced", "audit_ddl"])
    assert (dropped["action"], dropped["category"]) == ("partition_dropped", "system")
    assert (dropped["entity_type"], dropped["entity_id"]) == ("public.parts", None)
    assert dropped["after"] == {"partition": "public.parts_1"}
    assert dropped["txid"] == txid


def test_new_partitions_get_their_truncate_trigger(audited: Conn, app_conn: Conn) -> None:
    """A partition added by the table's owner gets the TRUNCATE trigger attach
    would give it, so that TRUNCATE of that partition alone is recorded."""
    run(app_conn, "CREATE TABLE public.parts_2 PARTITION OF public.parts"
                  " FOR VALUES FROM (100) TO (200)",
        "INSERT INTO public.parts VALUES (150)", "TRUNCATE public.parts_2")
    assert triggers(audited, "public.parts_2") == [("auditsql_capture_row", "A"),
                                                   ("auditsql_capture_truncate", "A")]
    assert brief(events(audited, "public.parts")) == [("created", "150"), ("truncated", "150")]


@pytest.fixture
def operator(pg: Server, installed_db: str, app: AppRole, su: Conn) -> Iterator[Conn]:
    """The application role, made a member of the operator role: it may
    attach and detach its tables, and holds no right over the log."""
    su.execute(sql.SQL("GRANT {} TO {}").format(ident(OPERATOR), ident(app.name)))
    with connect(app.dsn) as conn:
        yield conn


def test_an_operator_may_attach_and_detach(audited: Conn, operator: Conn) -> None:
    for _ in range(2):
        detach(operator, "public.items")
        assert triggers(audited, "public.items") == []
        attach(operator, "public.items", capture="statement")
        assert triggers(audited, "public.items") == ALWAYS
    attach(operator, "public.parts")
    refused(operator, TAMPERING[0])
    actions = [e["action"] for e in events(audited, "public.items", ["attached", "detached"])]
    assert actions == ["attached", "detached", "attached", "detached", "attached"]


def test_an_operator_cannot_touch_the_log(audited: Conn, operator: Conn) -> None:
    """Attaching gives no power over the log: no guard lifted, no event
    written, no grant on it, no audit object changed, flag or not."""
    operator.execute("SET auditsql.permit_ddl = on")
    partition = month_partition(audited)
    for statement in (*AUDIT_OBJECT_DDL, f"ALTER TABLE {partition} DISABLE TRIGGER ALL"):
        expect_error(operator, statement, sqlstate="42501")
    for statement in ("INSERT INTO audit.events (category, action) VALUES ('data', 'created')",
                      f"DELETE FROM {partition}", "GRANT DELETE ON audit.events TO PUBLIC",
                      "SELECT audit.record_system_event('attached', 'x', NULL, NULL)",
                      "SELECT audit.record_ddl('DROP TABLE', ARRAY['forged'])",
                      "SELECT audit.capture_truncate(1, 1)"):
        expect_error(operator, statement, sqlstate="42501")
    assert scalar(audited, "SELECT has_table_privilege('public', 'audit.events', 'DELETE')") is False


def test_an_owner_member_cannot_change_audit_objects_by_hand(
        audited: Conn, app: AppRole, su: Conn) -> None:
    """A login role granted the owner role (which nothing needs any more) may
    not lift a guard, with or without the flag, directly or as the owner
    role: only the owner role's own functions, with the flag, may."""
    su.execute(sql.SQL("GRANT {} TO {}").format(ident(OWNER), ident(app.name)))
    with connect(app.dsn) as member:
        for role in (None, OWNER):
            if role:
                member.execute(sql.SQL("SET ROLE {}").format(ident(role)))
            member.execute("SET auditsql.permit_ddl = on")
            for statement in AUDIT_OBJECT_DDL:
                refused(member, statement)
        # Nor make a function of the owner role's elsewhere, to run as it.
        member.execute("RESET ROLE")
        run(member, "CREATE SCHEMA mine",
            sql.SQL("GRANT CREATE ON SCHEMA mine TO {}").format(ident(OWNER)),
            "CREATE FUNCTION mine.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        refused(member, sql.SQL("ALTER FUNCTION mine.f() OWNER TO {}").format(ident(OWNER)))
        member.execute(sql.SQL("SET ROLE {}").format(ident(OWNER)))
        refused(member, "CREATE FUNCTION mine.escape() RETURNS int LANGUAGE sql"
                        " SECURITY DEFINER AS 'SELECT 1'")
        # The event triggers and their function belong to the installing
        # superuser, in a schema of its own: out of the owner role's reach.
        guard = sql.Identifier(guard_schema_name("audit"))
        for statement in (
            sql.SQL("DROP FUNCTION {}.ddl_guard() CASCADE").format(guard),
            sql.SQL("CREATE OR REPLACE FUNCTION {}.ddl_guard() RETURNS event_trigger"
                    " LANGUAGE plpgsql AS $$ BEGIN END $$").format(guard),
            sql.SQL("DROP SCHEMA {} CASCADE").format(guard),
            sql.SQL("ALTER EVENT TRIGGER auditsql_ddl_audit DISABLE"),
            sql.SQL("DROP EVENT TRIGGER auditsql_drop_audit"),
        ):
            expect_error(member, statement, sqlstate="42501")
    assert scalar(audited, "SELECT count(*) FROM pg_event_trigger"
                           " WHERE evtname LIKE 'auditsql%%' AND evtenabled = 'A'") == 2
    assert scalar(audited, "SELECT to_regclass('audit.events_default') IS NOT NULL")
    assert audit_ddl(audited) == []


def test_install_again_by_an_owner_member_is_refused(
        pg: Server, installed_db: str, make_role: MakeRole, su: Conn, audited: Conn) -> None:
    """A role that is no superuser may not run the install script over an
    installation the event triggers guard: it would rewrite audit objects."""
    installer = make_role("CREATEROLE")
    run(su,
        sql.SQL("GRANT {} TO {}").format(ident(OWNER), ident(installer)),
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            ident(dbname(installed_db)), ident(installer)))
    try:
        with psycopg.connect(pg.dsn(dbname(installed_db), user=installer)) as conn:
            with pytest.raises(PermissionDenied, match="only a superuser's install may change"):
                install(conn, Settings())
        with psycopg.connect(installed_db) as conn:
            install(conn, Settings())
    finally:
        su.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
            ident(dbname(installed_db)), ident(installer)))
    assert triggers(audited, "public.items") == ALWAYS


def test_event_triggers_fire_in_replica_mode(
        pg: Server, audited: Conn, app: AppRole, app_conn: Conn) -> None:
    """session_replication_role = replica lifts neither capture nor the event
    triggers (all ENABLE ALWAYS); a role may be allowed to set it since 15."""
    if pg.version_num < 150000:
        pytest.skip("GRANT SET ON PARAMETER needs PostgreSQL 15")
    audited.execute(sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(
        ident(app.name)))
    try:
        app_conn.execute("SET session_replication_role = replica")
        refused(app_conn, TAMPERING[0])
        refused(app_conn, TAMPERING[6])
        writes_are_recorded(audited, app_conn)
    finally:
        app_conn.execute("RESET session_replication_role")
        audited.execute(sql.SQL("REVOKE SET ON PARAMETER session_replication_role FROM {}")
                        .format(ident(app.name)))
    assert set(scalar(audited, "SELECT array_agg(DISTINCT evtenabled::text) FROM pg_event_trigger"
                               " WHERE evtname LIKE 'auditsql%%'")) == {"A"}


@pytest.fixture
def plain_install(pg: Server, db: str, make_role: MakeRole) -> Iterator[tuple[str, str]]:
    """(superuser DSN, installer DSN) of a database installed by a role that
    is no superuser, with roles of its own: no event triggers."""
    installer = make_role("CREATEROLE")
    settings = Settings(owner=unique_name("auditsql_r_own"), reader=unique_name("auditsql_r_rd"),
                        admin=unique_name("auditsql_r_adm"), writer=unique_name("auditsql_r_wr"),
                        operator=unique_name("auditsql_r_op"))
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            ident(dbname(db)), ident(installer)))
    dsn = pg.dsn(dbname(db), user=installer)
    try:
        with psycopg.connect(dsn) as conn:
            install(conn, settings)
        yield db, dsn
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
                ident(dbname(db)), ident(installer)))
        for role in (settings.owner, settings.reader, settings.admin, settings.writer,
                     settings.operator):
            drop_role(pg, role)


def test_without_a_superuser_nothing_is_refused(plain_install: tuple[str, str]) -> None:
    """Installed without a superuser there are no event triggers: tampering
    is not prevented (auditsql verify detects it, see tests/cli/test_verify.py)."""
    su_dsn, installer_dsn = plain_install
    with connect(su_dsn) as su, connect(installer_dsn) as installer:
        assert scalar(su, "SELECT count(*) FROM pg_event_trigger") == 0
        assert scalar(su, "SELECT settings->>'event_trigger' FROM audit.installation") == "false"
        run(installer, "CREATE SCHEMA app", "CREATE TABLE app.mine (id int PRIMARY KEY)")
        attach(installer, "app.mine", capture="statement")
        run(installer, "ALTER TABLE app.mine DISABLE TRIGGER auditsql_capture_insert")
        assert ("auditsql_capture_insert", "D") in triggers(su, "app.mine")


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_without_a_superuser_capture_still_refuses_a_json_cast(
        plain_install: tuple[str, str], capture: str) -> None:
    """No event trigger refuses the cast as it is made: capture keeps
    looking for one on each write, and refuses while it exists."""
    su_dsn, installer_dsn = plain_install
    with connect(su_dsn) as su, connect(installer_dsn) as installer:
        run(installer, "CREATE SCHEMA app", "CREATE TYPE app.mood AS ENUM ('calm')",
            "CREATE FUNCTION app.mood_json(app.mood) RETURNS json LANGUAGE sql"
            " AS $$ SELECT to_json($1::text) $$",
            "CREATE TABLE app.moods (id int PRIMARY KEY, m app.mood)")
        attach(installer, "app.moods", capture=capture)
        run(installer, "INSERT INTO app.moods VALUES (1, 'calm')",
            "CREATE CAST (app.mood AS json) WITH FUNCTION app.mood_json(app.mood)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refusing to capture"):
            run(installer, "INSERT INTO app.moods VALUES (2, 'calm')")
        run(installer, "DROP CAST (app.mood AS json)", "INSERT INTO app.moods VALUES (2, 'calm')")
        assert scalar(su, "SELECT count(*) FROM audit.events WHERE entity_type = 'app.moods'"
                      " AND action = 'created'") == 2
