"""No code of an application role runs inside the audit functions.

Look-alike functions, aggregates, operators and tables planted in a schema
and in pg_temp must never be picked up through search_path, and objects
attached to an audited table (casts of its column types, row security
policies) must never run with the owner role's rights.
"""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import tuple_row

from tests.harness.roles import MakeRole
from tests.sql.sqltools import (
    OWNER,
    AppRole,
    Conn,
    attach,
    column,
    detach,
    events,
    run,
    scalar,
)

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
    ("array_remove", "anyarray, anyelement", "anyarray"),
    ("jsonb_build_array", "jsonb, jsonb", "jsonb"),
    ("row_to_json", "record", "json"),
    ("regexp_like", "text, text", "boolean"),
    ("pg_identify_object", "oid, oid, integer", "record"),
)

# Operators the generated capture functions spell OPERATOR(pg_catalog.x),
# planted for the operand types they are used with (and a few more), so an
# unqualified use anywhere would pick the look-alike and fail the write.
LOOK_ALIKE_OPERATORS = (
    ("=", "text", "text", "boolean"),
    ("=", "jsonb", "jsonb", "boolean"),
    ("=", "oid", "oid", "boolean"),
    ("=", "bigint", "bigint", "boolean"),
    ("<>", "text", "text", "boolean"),
    ("<>", "oid", "oid", "boolean"),
    (">=", "oid", "oid", "boolean"),
    ("~", "text", "text", "boolean"),
    ("||", "text", "text", "text"),
    ("-", "jsonb", "text[]", "jsonb"),
    ("->", "jsonb", "text", "jsonb"),
    ("->>", "jsonb", "text", "text"),
    ("*=", "record", "record", "boolean"),
    ("?", "jsonb", "text", "boolean"),
    ("@>", "text[]", "text[]", "boolean"),
    ("||", "jsonb", "jsonb", "jsonb"),
    ("-", "jsonb", "text", "jsonb"),
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
    for number, (symbol, left, right, returns) in enumerate(LOOK_ALIKE_OPERATORS):
        conn.execute(raising_function(schema, f"op_{number}", f"{left}, {right}", returns))
        conn.execute(f"CREATE OPERATOR {schema}.{symbol} (leftarg = {left}, rightarg = {right},"
                     f" function = {schema}.op_{number})")
    run(
        conn,
        raising_function(schema, "agg_step", "jsonb, anyelement", "jsonb"),
        raising_function(schema, "count_step", "bigint", "bigint"),
        raising_function(schema, "text_step", "text, text, text", "text"),
        f"CREATE AGGREGATE {schema}.jsonb_agg(anyelement)"
        f" (sfunc = {schema}.agg_step, stype = jsonb)",
        f"CREATE AGGREGATE {schema}.row_number(*) (sfunc = {schema}.count_step, stype = bigint)",
        f"CREATE AGGREGATE {schema}.string_agg(text, text)"
        f" (sfunc = {schema}.text_step, stype = text)",
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
        "CREATE TABLE public.items (id int PRIMARY KEY, note text, secret text)",
        "CREATE TABLE public.pairs (a int, b text, note text, PRIMARY KEY (a, b))",
        "CREATE TABLE public.parts (id int PRIMARY KEY, note text) PARTITION BY RANGE (id)",
        "CREATE TABLE public.parts_1 PARTITION OF public.parts FOR VALUES FROM (0) TO (100)",
        "CREATE SCHEMA evil",
    )
    plant_look_alikes(app_conn, "evil")
    return ["public.items", "public.pairs", "public.parts"]


def write_everything(conn: Conn, role: str = "admin") -> None:
    """Insert, update, no-op update, delete and truncate each audited table."""
    with conn.transaction():
        conn.execute("SELECT audit.set_actor('u-7', 'eve@example.com', %s)", (role,))
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


@pytest.mark.parametrize("role", ["admin", "member"])
@pytest.mark.parametrize("capture", ["row", "statement"])
@pytest.mark.parametrize("search_path", SEARCH_PATHS)
def test_look_alikes_never_run(su: Conn, app: AppRole, app_conn: Conn, audited: list[str],
                               search_path: str, capture: str, role: str) -> None:
    """Every path of the generated code: both capture modes, admin and other
    actors, and items with every column policy and a required actor."""
    plant_temp_look_alikes(app_conn)
    su.execute(f"SET search_path = {search_path}")
    for table in audited:
        attach(su, table, capture="row" if table == "public.parts" else capture)
    su.execute("SELECT audit.attach('public.items', NULL, NULL, ARRAY['secret'], ARRAY['note'],"
               " '{\"note\": \"note_changed\"}', true)")
    app_conn.execute(f"SET search_path = {search_path}")
    write_everything(app_conn, role)
    su.execute("RESET search_path")
    for table in audited:
        recorded = events(su, table)
        assert [e["action"] for e in recorded] == ROW_ACTIONS_EXPECTED, table
        assert [e["entity_id"] for e in recorded] == expected_ids(table), table
        assert {e["actor_id"] for e in recorded} == {"u-7"}
        assert {str(e["ip_address"]) for e in recorded} == {"198.51.100.9"}
        assert {e["db_user"] for e in recorded} == {app.name}
        assert recorded[2]["changed_columns"] == ["note"]
        assert {e["admin"] for e in recorded} == {role == "admin"}
    assert len(events(su, "public.items", actions=["note_changed"])) == 1
    su.execute(f"SET search_path = {search_path}")
    for table in audited:
        detach(su, table)
    su.execute("RESET search_path")
    assert len(events(su, actions=["detached"])) == len(audited)
    assert scalar(su, "SELECT count(*) FROM evil.events") == 0


GENERATED_CAPTURE = re.compile(r"capture_[0-9]+")


def test_every_security_definer_function_pins_search_path(su: Conn) -> None:
    """Every function pins search_path, except the generated capture
    functions, which qualify every name instead (a SET clause would cost every
    write): test_look_alikes_never_run proves them at run time, and
    test_generated_capture_code_names_no_operator_bare below reads them."""
    run(su, "CREATE TABLE plain (id int PRIMARY KEY)", "SELECT audit.attach('plain')")
    rows = su.execute(
        "SELECT p.oid::regprocedure::text AS fn, p.proname, p.prosecdef, p.proconfig"
        " FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace ORDER BY 1"
    ).fetchall()
    definers = {r["fn"] for r in rows if r["prosecdef"]}
    assert {"audit.attach_prepare(regclass,text[],text,text[],text[],jsonb,boolean,boolean)",
            "audit.attach_complete(regclass,boolean,oid[])", "audit.detach_prepare(regclass)",
            "audit.refresh(regclass)", "audit.record_ddl(text,text[])"} <= definers
    assert any(GENERATED_CAPTURE.fullmatch(r["proname"]) for r in rows)
    for row in rows:
        if GENERATED_CAPTURE.fullmatch(row["proname"]):
            assert row["proconfig"] is None, row["fn"]
        elif row["fn"] == "audit.snapshot(regclass,integer)":
            # A procedure that commits may have no SET clause; it runs as
            # its caller and qualifies every name.
            assert not row["prosecdef"] and row["proconfig"] is None, row["fn"]
        else:
            assert "search_path=pg_catalog, pg_temp" in (row["proconfig"] or []), row["fn"]


# A bare operator, or a construct that looks one up through search_path.
BARE = re.compile(r"[=<>!~|+*/%^&#@?-]|\bNULLIF\b|\bDISTINCT\b|\bIN\s*\(|\bLIKE\b|\bUSING\b"
                  r"|\bBETWEEN\b|\bANY\s*\(", re.I)


@pytest.mark.parametrize("capture", ["row", "statement"])
@pytest.mark.parametrize("kind", ["ordinary", "composite key", "partitioned"])
def test_generated_capture_code_names_no_operator_bare(su: Conn, kind: str, capture: str) -> None:
    """Outside string literals and comments, every operator in a generated
    capture function is spelled OPERATOR(pg_catalog.x), and every function and
    type is schema-qualified; with policies and a required actor too."""
    if kind == "partitioned" and capture == "statement":
        pytest.skip("partitioned tables are captured row by row")
    ddl = {"ordinary": "CREATE TABLE t (id int PRIMARY KEY, n numeric, s text)",
           "composite key": "CREATE TABLE t (a int, b text, v jsonb, PRIMARY KEY (a, b))",
           "partitioned": "CREATE TABLE t (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)"}
    run(su, ddl[kind])
    su.execute("SELECT audit.attach('t', NULL, %s, NULL, ARRAY[%s], %s, true)",
               (capture, {"ordinary": "s", "composite key": "v", "partitioned": "v"}[kind],
                '{"n": "n_changed"}' if kind == "ordinary" else None))
    body = scalar(su, "SELECT prosrc FROM pg_proc WHERE proname = 'capture_' || 't'::regclass::oid")
    code = re.sub(r"--[^\n]*", " ", body)
    code = re.sub(r"'(?:[^']|'')*'", " ", code)
    code = re.sub(r"OPERATOR\(pg_catalog\.=\) ANY \(", " ", code)
    code = re.sub(r"OPERATOR\(pg_catalog\.[^)]+\)", " ", code)
    code = code.replace(":=", " ").replace(".*", " ")
    # RAISE ... USING ERRCODE = ..., HINT = ...: PL/pgSQL options, no operator
    code = re.sub(r"\bUSING\s+(ERRCODE|HINT|DETAIL|MESSAGE)\s*=|,\s*(ERRCODE|HINT|DETAIL)\s*=", " ",
                  code)
    assert BARE.findall(code) == [], code
    code = re.sub(r"\bAS\s+\w+\s*\(", "AS (", code)  # a column alias list, no call
    for call in re.findall(r"([A-Za-z_.\"]+)\s*\(", code):
        assert call.startswith(("pg_catalog.", '"audit".', "audit.")) or call.upper() in {
            "ARRAY", "ROW", "EXISTS", "AND", "OR", "NOT", "OVER", "FROM", "WHERE", "IF", "COALESCE",
            "ELSIF", "ELSE", "AS", "CASE", "WHEN", "THEN", "JOIN", "ON", "SELECT", "VALUES", "ALL",
        } or call.endswith("auditsql_old") or call.endswith("auditsql_new"), call
    declarations = code[code.index("DECLARE"):code.index("BEGIN")]
    for declared in re.findall(r"^\s+v_\w+\s+([\w.]+)", declarations, re.M):
        assert declared.startswith("pg_catalog."), declared


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


EVENT_TRIGGERS = ("auditsql_ddl_audit", "auditsql_drop_audit")


def without_event_triggers(su: Conn) -> None:
    """What capture_source sees in an install without event triggers."""
    for name in EVENT_TRIGGERS:
        run(su, sql.SQL("ALTER EVENT TRIGGER {} DISABLE").format(sql.Identifier(name)))


def mood_cast_table(app_conn: Conn) -> None:
    run(
        app_conn, *SPY_TABLE,
        "CREATE TYPE public.mood AS ENUM ('calm', 'angry')",
        f"""CREATE FUNCTION public.mood_json(public.mood) RETURNS json LANGUAGE plpgsql AS $$
            {SPY_BODY} RETURN to_json($1::text); END $$""",
        "CREATE TABLE public.moods (id int PRIMARY KEY, m public.mood)",
    )


CAST_MOOD = "CREATE CAST (public.mood AS json) WITH FUNCTION public.mood_json(public.mood)"


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_json_cast_of_a_column_type_is_refused_as_it_is_made(
        su: Conn, app: AppRole, app_conn: Conn, capture: str) -> None:
    """With the event triggers the cast cannot be made, by anyone; capture
    then looks for none on each write."""
    mood_cast_table(app_conn)
    attach(su, "public.moods", capture=capture)
    assert "check_json_casts" not in scalar(
        su, "SELECT prosrc FROM pg_proc WHERE pronamespace = 'audit'::regnamespace"
            " AND proname = 'capture_' || 'public.moods'::regclass::oid")
    for conn in (app_conn, su):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="CREATE CAST refused"):
            run(conn, CAST_MOOD)
    # Nor may a superuser's cast function pass to an ordinary role.
    run(su, "CREATE FUNCTION public.mood_json2(public.mood) RETURNS json LANGUAGE sql"
            " AS $$ SELECT to_json($1::text) $$",
        "CREATE CAST (public.mood AS json) WITH FUNCTION public.mood_json2(public.mood)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="ALTER FUNCTION refused"):
        run(su, sql.SQL("ALTER FUNCTION public.mood_json2(public.mood) OWNER TO {}").format(
            sql.Identifier(app.name)))
    run(su, "DROP CAST (public.mood AS json)")
    for statement in ("INSERT INTO public.moods VALUES (2, 'calm')",
                      "UPDATE public.moods SET m = 'angry'",
                      "DELETE FROM public.moods"):
        run(app_conn, statement)
    assert_no_code_ran_as_owner(su, app)


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_json_cast_of_a_column_type_never_runs_as_owner(
        su: Conn, app: AppRole, app_conn: Conn, capture: str) -> None:
    """Without event triggers, to_jsonb() would call the cast as the owner:
    capture refuses, loudly."""
    mood_cast_table(app_conn)
    without_event_triggers(su)
    attach(su, "public.moods", capture=capture)
    run(app_conn, "INSERT INTO public.moods VALUES (1, 'calm')")
    run(app_conn, CAST_MOOD)
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


@pytest.mark.parametrize("capture", ["row", "statement"])
def test_json_cast_made_before_the_event_triggers_is_still_refused(
        su: Conn, app: AppRole, app_conn: Conn, capture: str) -> None:
    """A cast made while the event triggers were not in force: capture made
    afterwards keeps the check, and verify reports the cast."""
    from auditsql import checks

    mood_cast_table(app_conn)
    without_event_triggers(su)
    run(app_conn, CAST_MOOD)
    for name in EVENT_TRIGGERS:
        run(su, sql.SQL("ALTER EVENT TRIGGER {} ENABLE ALWAYS").format(sql.Identifier(name)))
    attach(su, "public.moods", capture=capture)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refusing to capture"):
        run(app_conn, "INSERT INTO public.moods VALUES (1, 'calm')")
    with su.cursor(row_factory=tuple_row) as cur:
        result = checks.capture_json_casts(checks.Context(cur, "audit"))
    assert result.status == checks.FAIL and "mood -> json (function mood_json(mood)" in result.message
    assert_no_code_ran_as_owner(su, app)
    run(app_conn, "DROP CAST (public.mood AS json)")
    with su.cursor(row_factory=tuple_row) as cur:
        assert checks.capture_json_casts(checks.Context(cur, "audit")).status == checks.PASS


def test_json_cast_of_another_superuser_is_trusted(
        su: Conn, make_role: MakeRole) -> None:
    """Casts of the bootstrap superuser pass the cheap test; a cast whose
    function another superuser owns takes the slower check, and passes it."""
    admin = make_role("SUPERUSER")
    run(su, "CREATE TYPE public.tone AS ENUM ('low', 'high')",
        "CREATE FUNCTION public.tone_json(public.tone) RETURNS json LANGUAGE sql"
        " AS $$ SELECT to_json('tone:' || $1::text) $$",
        sql.SQL("ALTER FUNCTION public.tone_json(public.tone) OWNER TO {}").format(
            sql.Identifier(admin)),
        "CREATE CAST (public.tone AS json) WITH FUNCTION public.tone_json(public.tone)",
        "CREATE TABLE public.tones (id int PRIMARY KEY, t public.tone)")
    attach(su, "public.tones")
    run(su, "INSERT INTO public.tones VALUES (1, 'low')")
    [event] = events(su, "public.tones")
    assert event["after"] == {"id": 1, "t": "tone:low"}


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


RETENTION_LOOK_ALIKES = (
    ("regexp_match", "text, text", "text[]"),
    ("btrim", "text, text", "text"),
    ("btrim", "text", "text"),
    ("lower", "text", "text"),
    ("char_length", "text", "integer"),
    ("date_trunc", "text, timestamptz", "timestamptz"),
    ("date_trunc", "text, timestamp", "timestamp"),
    ("make_interval", "months integer", "interval"),
    ("to_char", "timestamp, text", "text"),
    ("isfinite", "timestamptz", "boolean"),
    ("clock_timestamp", "", "timestamptz"),
    ("pg_get_expr", "pg_node_tree, oid", "text"),
    ("pg_has_role", "name, text, text", "boolean"),
    ("jsonb_array_length", "jsonb", "integer"),
    ("jsonb_array_elements", "jsonb", "SETOF jsonb"),
    ("unnest", "anyarray", "SETOF anyelement"),
    ("ts_le", "timestamptz, timestamptz", "boolean"),
)


def test_retention_functions_ignore_look_alikes(su: Conn) -> None:
    """Maintenance, retention and holds, called with look-alikes first in the
    search path, run only the real thing."""
    run(
        su,
        "CREATE SCHEMA evil",
        "CREATE TABLE public.t (id int PRIMARY KEY)",
        "SELECT audit.attach('public.t')",
        "INSERT INTO public.t VALUES (1)",
        "SELECT audit.ensure_partitions('2015-01-01', 2)",
        "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id)"
        " VALUES ('data', 'created', '2015-01-10', 'public.t', '1'),"
        " ('data', 'created', '2015-01-11', 'public.t', '2'),"
        " ('data', 'created', '2014-06-01', 'public.t', '3')",
    )
    plant_look_alikes(su, "evil")
    for name, args, returns in RETENTION_LOOK_ALIKES:
        su.execute(raising_function("evil", name, args, returns))
    run(
        su,
        "CREATE AGGREGATE evil.count(*) (sfunc = evil.count_step, stype = bigint)",
        "CREATE AGGREGATE evil.array_agg(anyelement) (sfunc = evil.agg_step, stype = jsonb)",
        "CREATE OPERATOR evil.<= (leftarg = timestamptz, rightarg = timestamptz,"
        " function = evil.ts_le)",
        "CREATE TABLE evil.retention (keep int CHECK (false))",
        "CREATE TABLE evil.legal_holds (entity_type int CHECK (false))",
        "CREATE TABLE evil.events_default (id int CHECK (false))",
        "CREATE TEMP TABLE retention (keep int CHECK (false))",
        "CREATE TEMP TABLE legal_holds (entity_type int CHECK (false))",
        "CREATE TEMP TABLE events_default (id int CHECK (false))",
    )
    plant_temp_look_alikes(su)
    for search_path in SEARCH_PATHS:
        su.execute(f"SET search_path = {search_path}")
        with su.transaction(force_rollback=True):
            assert scalar(su, "SELECT audit.set_retention('saas')::text") == "3 years"
            moved = column(su, "SELECT partition FROM audit.maintain(1)")
            assert moved[0] == "events_2014_06"
            assert scalar(su, "SELECT audit.place_hold('public.t', '1', 'case')") is True
            removed = su.execute(
                "SELECT partition, rows_removed, rows_kept FROM"
                " audit.apply_retention('2019-01-01 00:00+00')").fetchall()
            assert [tuple(r.values()) for r in removed] == [
                ("events_2014_06", 1, 0), ("events_2015_01", 1, 1), ("events_2015_02", 0, 0)]
            su.execute("SELECT audit.release_hold('public.t', '1', 'done')")
            assert "events_2015_01" in column(su, "SELECT name FROM audit.event_partitions()")
    su.execute("RESET search_path")
    assert scalar(su, "SELECT count(*) FROM evil.events") == 0


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
    for statement in ("ALTER TABLE public.items DISABLE TRIGGER auditsql_capture_row",
                      "DROP TRIGGER auditsql_capture_truncate ON public.items"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="would stop or weaken"):
            app_conn.execute(statement)
    run(app_conn, "ALTER TABLE public.items ADD COLUMN note text",
        "CREATE TABLE public.more (id int)", "DROP TABLE public.more")
    detach(su, "public.items")
    su.execute("RESET search_path")
    assert column(su, "SELECT tgname FROM pg_trigger"
                      " WHERE tgrelid = 'public.items'::regclass") == []
