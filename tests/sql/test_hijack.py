"""No code of an application role runs inside the audit functions.

Look-alike functions, aggregates, operators and tables planted in a schema
and in pg_temp must never be picked up through search_path, and objects
attached to an audited table (casts of its column types, row security
policies) must never run with the owner role's rights.
"""

from __future__ import annotations

import psycopg
import pytest

from .sqltools import OWNER, AppRole, Conn, attach, column, detach, events, run, scalar

LOOK_ALIKE_FUNCTIONS = (
    ("to_jsonb", "anyelement", "jsonb"),
    ("to_json", "anyelement", "json"),
    ("set_config", "text, text, boolean", "text"),
    ("current_setting", "text", "text"),
    ("current_setting", "text, boolean", "text"),
    ("nullif", "text, text", "text"),
    ("txid_current", "", "bigint"),
    ("statement_timestamp", "", "timestamptz"),
    ("now", "", "timestamptz"),
    ("inet_client_addr", "", "inet"),
    ("format", "text", "text"),
    ("format", "text, VARIADIC text[]", "text"),
    ("quote_literal", "text", "text"),
    ("quote_ident", "text", "text"),
    ("jsonb_typeof", "jsonb", "text"),
    ("jsonb_build_object", "text, anyelement, text, anyelement", "jsonb"),
    ("pg_partition_root", "regclass", "regclass"),
    ("cardinality", "anyarray", "integer"),
    ("has_table_privilege", "text, regclass, text", "boolean"),
    ("pg_input_is_valid", "text, text", "boolean"),
    ("inet", "text", "inet"),
    ("textregclass", "text", "regclass"),
)
SEARCH_PATHS = (
    "evil, pg_temp, public",
    "pg_temp, evil, public",
    "evil, pg_catalog, pg_temp, public",
    "pg_temp, evil, pg_catalog, public",
)
ROW_ACTIONS_EXPECTED = ["created", "created", "updated", "deleted", "truncated"]


def raising_function(schema: str, name: str, args: str, returns: str) -> str:
    """DDL of a function that raises 'hijacked' when called."""
    return (f"CREATE FUNCTION {schema}.{name}({args}) RETURNS {returns} LANGUAGE plpgsql"
            f" AS $$ BEGIN RAISE EXCEPTION 'hijacked: {schema}.{name}({args})'; END $$")


def plant_look_alikes(conn: Conn, schema: str) -> None:
    """Functions, aggregates, operators and tables named like the ones audit code uses."""
    for name, args, returns in LOOK_ALIKE_FUNCTIONS:
        conn.execute(raising_function(schema, name, args, returns))
    run(
        conn,
        raising_function(schema, "agg_step", "jsonb, anyelement", "jsonb"),
        raising_function(schema, "count_step", "bigint", "bigint"),
        raising_function(schema, "text_step", "text, text, text", "text"),
        raising_function(schema, "jsonb_get", "jsonb, text", "jsonb"),
        raising_function(schema, "jsonb_get_text", "jsonb, text", "text"),
        raising_function(schema, "jsonb_eq", "jsonb, jsonb", "boolean"),
        raising_function(schema, "record_eq", "record, record", "boolean"),
        f"CREATE AGGREGATE {schema}.jsonb_agg(anyelement)"
        f" (sfunc = {schema}.agg_step, stype = jsonb)",
        f"CREATE AGGREGATE {schema}.row_number(*) (sfunc = {schema}.count_step, stype = bigint)",
        f"CREATE AGGREGATE {schema}.string_agg(text, text)"
        f" (sfunc = {schema}.text_step, stype = text)",
        f"CREATE OPERATOR {schema}.-> (leftarg = jsonb, rightarg = text,"
        f" function = {schema}.jsonb_get)",
        f"CREATE OPERATOR {schema}.->> (leftarg = jsonb, rightarg = text,"
        f" function = {schema}.jsonb_get_text)",
        f"CREATE OPERATOR {schema}.= (leftarg = jsonb, rightarg = jsonb,"
        f" function = {schema}.jsonb_eq)",
        f"CREATE OPERATOR {schema}.*= (leftarg = record, rightarg = record,"
        f" function = {schema}.record_eq)",
        f"CREATE TABLE {schema}.events (id int CHECK (false))",
        f"CREATE TABLE {schema}.tables (relid int CHECK (false))",
        f"CREATE TABLE {schema}.pg_trigger (tgname text CHECK (false))",
        f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC",
        f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO PUBLIC",
    )


def plant_temp_look_alikes(conn: Conn) -> None:
    """Temporary look-alikes in the session's pg_temp schema."""
    run(
        conn,
        raising_function("pg_temp", "to_jsonb", "anyelement", "jsonb"),
        raising_function("pg_temp", "current_setting", "text, boolean", "text"),
        raising_function("pg_temp", "set_config", "text, text, boolean", "text"),
        raising_function("pg_temp", "jsonb_get_text", "jsonb, text", "text"),
        "CREATE OPERATOR pg_temp.->> (leftarg = jsonb, rightarg = text,"
        " function = pg_temp.jsonb_get_text)",
        "CREATE TEMP TABLE events (id int CHECK (false))",
        "CREATE TEMP TABLE auditsql_new (id int CHECK (false))",
        "CREATE TEMP TABLE items (id int CHECK (false))",
    )


@pytest.fixture
def audited(su: Conn, app_conn: Conn) -> list[str]:
    """Tables owned by the application role: single key, composite key, partitioned."""
    run(
        app_conn,
        "CREATE TABLE public.items (id int PRIMARY KEY, note text)",
        "CREATE TABLE public.pairs (a int, b text, note text, PRIMARY KEY (a, b))",
        "CREATE TABLE public.parts (id int PRIMARY KEY, note text) PARTITION BY RANGE (id)",
        "CREATE TABLE public.parts_1 PARTITION OF public.parts FOR VALUES FROM (0) TO (100)",
        "CREATE SCHEMA evil",
    )
    plant_look_alikes(app_conn, "evil")
    return ["public.items", "public.pairs", "public.parts"]


def write_everything(conn: Conn) -> None:
    """Insert, update, no-op update, delete and truncate each audited table."""
    with conn.transaction():
        conn.execute("SELECT audit.set_actor('u-7', 'eve@example.com', 'admin')")
        conn.execute("SELECT audit.set_request('198.51.100.9', 'UA', 'req-7')")
        run(
            conn,
            "INSERT INTO public.items VALUES (1, 'a'), (2, 'b')",
            "INSERT INTO public.pairs VALUES (1, 'x', 'a'), (2, 'y', 'b')",
            "INSERT INTO public.parts VALUES (1, 'a'), (2, 'b')",
            "UPDATE public.items SET note = 'c' WHERE id = 1",
            "UPDATE public.pairs SET note = 'c' WHERE a = 1",
            "UPDATE public.parts SET note = 'c' WHERE id = 1",
            "UPDATE public.items SET note = note",
            "UPDATE public.pairs SET note = note",
            "UPDATE public.parts SET note = note",
            "DELETE FROM public.items WHERE id = 2",
            "DELETE FROM public.pairs WHERE a = 2",
            "DELETE FROM public.parts WHERE id = 2",
            "TRUNCATE public.items, public.pairs, public.parts",
        )


def expected_ids(table: str) -> list[str]:
    """entity_id of each event ``write_everything`` records for *table*."""
    first, second = {"public.pairs": ('[1, "x"]', '[2, "y"]')}.get(table, ("1", "2"))
    return [first, second, first, second, first]


@pytest.mark.parametrize("search_path", SEARCH_PATHS)
def test_look_alikes_never_run(su: Conn, app: AppRole, app_conn: Conn,
                               audited: list[str], search_path: str) -> None:
    plant_temp_look_alikes(app_conn)
    su.execute(f"SET search_path = {search_path}")
    for table in audited:
        attach(su, table)
    app_conn.execute(f"SET search_path = {search_path}")
    write_everything(app_conn)
    su.execute("RESET search_path")
    for table in audited:
        recorded = events(su, table)
        assert [e["action"] for e in recorded] == ROW_ACTIONS_EXPECTED, table
        assert [e["entity_id"] for e in recorded] == expected_ids(table), table
        assert {e["actor_id"] for e in recorded} == {"u-7"}
        assert {str(e["ip_address"]) for e in recorded} == {"198.51.100.9"}
        assert {e["db_user"] for e in recorded} == {app.name}
        assert recorded[2]["changed_columns"] == ["note"]
    su.execute(f"SET search_path = {search_path}")
    for table in audited:
        detach(su, table)
    su.execute("RESET search_path")
    assert len(events(su, actions=["detached"])) == len(audited)
    assert scalar(su, "SELECT count(*) FROM evil.events") == 0


def test_every_security_definer_function_pins_search_path(su: Conn) -> None:
    rows = su.execute(
        "SELECT p.oid::regprocedure::text AS fn, p.prosecdef, p.proconfig FROM pg_proc p"
        " WHERE p.pronamespace = 'audit'::regnamespace ORDER BY 1"
    ).fetchall()
    definers = {r["fn"] for r in rows if r["prosecdef"]}
    assert {"audit.capture_changes()", "audit.capture_row()",
            "audit.capture_truncate()"} <= definers
    for row in rows:
        assert "search_path=pg_catalog, pg_temp" in (row["proconfig"] or []), row["fn"]


SPY_TABLE = (
    "CREATE TABLE public.spy (who text)",
    "GRANT INSERT ON public.spy TO PUBLIC",
)
SPY_BODY = """
BEGIN
    INSERT INTO public.spy VALUES (current_user);
    BEGIN
        EXECUTE format('GRANT SELECT ON audit.events TO %I', session_user);
    EXCEPTION WHEN others THEN NULL;
    END;
"""


def assert_no_code_ran_as_owner(su: Conn, app: AppRole) -> None:
    """The spy never ran as the owner, and the role gained nothing on the log."""
    assert OWNER not in column(su, "SELECT DISTINCT who FROM public.spy")
    assert scalar(su, "SELECT has_table_privilege(%s, 'audit.events', 'SELECT')",
                  (app.name,)) is False


def test_json_cast_of_a_column_type_never_runs_as_owner(
        su: Conn, app: AppRole, app_conn: Conn) -> None:
    """to_jsonb() would call the cast as the owner: capture refuses, loudly."""
    run(
        app_conn, *SPY_TABLE,
        "CREATE TYPE public.mood AS ENUM ('calm', 'angry')",
        f"""CREATE FUNCTION public.mood_json(public.mood) RETURNS json LANGUAGE plpgsql AS $$
            {SPY_BODY} RETURN to_json($1::text); END $$""",
        "CREATE TABLE public.moods (id int PRIMARY KEY, m public.mood)",
    )
    attach(su, "public.moods")
    run(app_conn, "INSERT INTO public.moods VALUES (1, 'calm')")
    run(app_conn, "CREATE CAST (public.mood AS json) WITH FUNCTION public.mood_json(public.mood)")
    for statement in ("INSERT INTO public.moods VALUES (2, 'calm')",
                      "UPDATE public.moods SET m = 'angry'",
                      "DELETE FROM public.moods",
                      "TRUNCATE public.moods"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refusing to capture"):
            run(app_conn, statement)
    assert scalar(app_conn, "SELECT count(*) FROM public.moods") == 1
    assert [e["action"] for e in events(su, "public.moods")] == ["created"]
    assert_no_code_ran_as_owner(su, app)
    run(app_conn, "DROP CAST (public.mood AS json)")
    run(app_conn, "UPDATE public.moods SET m = 'angry'")
    assert [e["action"] for e in events(su, "public.moods")] == ["created", "updated"]


def test_row_security_policy_never_runs_as_owner(
        su: Conn, app: AppRole, app_conn: Conn) -> None:
    run(
        app_conn, *SPY_TABLE,
        f"""CREATE FUNCTION public.visible() RETURNS boolean LANGUAGE plpgsql AS $$
            {SPY_BODY} RETURN true; END $$""",
        "CREATE TABLE public.secrets (id int PRIMARY KEY)",
        "ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY visible ON public.secrets USING (public.visible())",
    )
    attach(su, "public.secrets")
    run(app_conn, "INSERT INTO public.secrets VALUES (1)", "TRUNCATE public.secrets")
    assert [e["action"] for e in events(su, "public.secrets")] == ["created", "truncated"]
    assert_no_code_ran_as_owner(su, app)


# Names the event trigger function uses: planted, they must never run in its
# place, whoever issues the DDL and whatever its search_path.
DDL_GUARD_LOOK_ALIKES = (
    ("pg_has_role", "name, oid, text", "boolean"),
    ("pg_event_trigger_ddl_commands", "", "SETOF record"),
    ("pg_event_trigger_dropped_objects", "", "SETOF record"),
    ("pg_partition_tree", "regclass", "SETOF record"),
    ("array_to_string", "anyarray, text", "text"),
)  # current_setting and cardinality are among LOOK_ALIKE_FUNCTIONS


@pytest.mark.parametrize("search_path", SEARCH_PATHS)
def test_the_event_trigger_function_ignores_look_alikes(
        su: Conn, app_conn: Conn, search_path: str) -> None:
    """ddl_guard() runs with the rights of whoever issues DDL, so it must not
    pick up that role's look-alikes: refusals and permissions stand."""
    run(app_conn, "CREATE TABLE public.items (id int PRIMARY KEY)", "CREATE SCHEMA evil")
    plant_look_alikes(app_conn, "evil")
    for name, args, returns in DDL_GUARD_LOOK_ALIKES:
        app_conn.execute(raising_function("evil", name, args, returns))
    plant_temp_look_alikes(app_conn)
    app_conn.execute(raising_function("pg_temp", "pg_has_role", "name, oid, text", "boolean"))
    su.execute(f"SET search_path = {search_path}")
    attach(su, "public.items")
    app_conn.execute(f"SET search_path = {search_path}")
    for statement in ("ALTER TABLE public.items DISABLE TRIGGER auditsql_capture_insert",
                      "DROP TRIGGER auditsql_capture_delete ON public.items"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="would stop or weaken"):
            app_conn.execute(statement)
    run(app_conn, "ALTER TABLE public.items ADD COLUMN note text",
        "CREATE TABLE public.more (id int)", "DROP TABLE public.more")
    detach(su, "public.items")
    su.execute("RESET search_path")
    assert column(su, "SELECT tgname FROM pg_trigger"
                      " WHERE tgrelid = 'public.items'::regclass") == []
