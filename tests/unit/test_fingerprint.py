"""fingerprint: reading what the install script defines, digests, and
comparing with the catalog. No database."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from importlib import resources

import pytest

from auditsql import fingerprint, render
from auditsql.fingerprint import (
    INSTALLED,
    MISSING,
    OUTDATED,
    UNEXPECTED,
    Definition,
    classify,
    parse_script,
    statements,
    tokens,
)
from auditsql.render import Settings, install_sql

VERSIONS = [140000, 150000, 160000, 170000, 180000]


# --------------------------------------------------------------------------
# Lexing
# --------------------------------------------------------------------------


def texts(script: str) -> list[str]:
    return [t.text for t in tokens(script)]


def test_comments_and_white_space_are_left_out() -> None:
    script = "-- a; comment\nSELECT /* nested /* ; */ still */ 1 ; -- end"
    assert texts(script) == ["SELECT", "1", ";"]


def test_strings_identifiers_and_bodies_keep_semicolons() -> None:
    script = (
        "SELECT 'a;b''c', E'x\\';y', \"q;\"\"u\" FROM t; "
        "CREATE FUNCTION f() AS $fn$ SELECT 1; $x$ not a tag end $x$ $fn$; "
        "DO $$ BEGIN NULL; END $$;"
    )
    found = statements(script)
    assert len(found) == 3
    values = [t.value for t in found[0] if t.kind in ("string", "ident")]
    assert values == ["a;b'c", "x';y", 'q;"u']
    body = next(t for t in found[1] if t.kind == "string")
    assert body.value == " SELECT 1; $x$ not a tag end $x$ "
    assert found[2][1].value == " BEGIN NULL; END "


def test_positional_parameters_are_not_dollar_quotes() -> None:
    assert [t.text for t in tokens("SELECT $1, $2")] == ["SELECT", "$", "1", ",", "$", "2"]


@pytest.mark.parametrize("script", ["SELECT 'open", 'SELECT "open', "DO $x$ open",
                                    "/* open"])
def test_unterminated_quotes_are_errors(script: str) -> None:
    with pytest.raises(ValueError):
        list(tokens(script))


# --------------------------------------------------------------------------
# Definitions in a script
# --------------------------------------------------------------------------


def test_each_kind_of_definition() -> None:
    script = """
        CREATE SCHEMA IF NOT EXISTS "s";
        CREATE OR REPLACE FUNCTION "s".f(p_a int DEFAULT 1, p_b text) RETURNS int
            LANGUAGE sql SET search_path = pg_catalog AS $fn$ SELECT 1 $fn$;
        CREATE TABLE IF NOT EXISTS "s"."My Table" (id int);
        CREATE UNLOGGED TABLE "s".u (id int);
        CREATE SEQUENCE IF NOT EXISTS "s".q;
        CREATE UNIQUE INDEX IF NOT EXISTS i_1 ON ONLY "s"."My Table" (id);
        DROP TRIGGER IF EXISTS t_1 ON "s"."My Table";
        CREATE TRIGGER t_1 BEFORE UPDATE OR DELETE ON "s"."My Table"
            FOR EACH ROW EXECUTE FUNCTION "s".f();
        CREATE OR REPLACE VIEW "s".v AS SELECT 1;
        CREATE MATERIALIZED VIEW IF NOT EXISTS "s".m AS SELECT 1;
        CREATE EVENT TRIGGER "e 1" ON ddl_command_end EXECUTE FUNCTION "s".f();
        GRANT EXECUTE ON FUNCTION "s".f(int, text), "s".g() TO app, PUBLIC;
        GRANT USAGE ON SCHEMA "s" TO PUBLIC;
        GRANT SELECT ON "s"."My Table" TO reader;
    """
    parsed = parse_script(script)
    found = [(d.kind, d.name, d.table, d.replaced) for d in parsed.definitions]
    assert found == [
        ("function", "f", None, True),
        ("table", "My Table", None, False),
        ("table", "u", None, True),
        ("sequence", "q", None, False),
        ("index", "i_1", "My Table", False),
        ("trigger", "t_1", "My Table", True),
        ("view", "v", None, True),
        ("materialized view", "m", None, False),
        ("event trigger", "e 1", None, True),
    ]
    assert parsed.definitions[0].body == hashlib.sha256(b" SELECT 1 ").hexdigest()
    assert parsed.public_grants == {("function", "f"), ("function", "g"), ("schema", "s")}
    assert parsed.unrecognized == ()


def test_unknown_kinds_are_reported() -> None:
    parsed = parse_script('CREATE TYPE "s".mood AS ENUM (\'a\'); CREATE ROLE r; '
                          "CREATE EXTENSION x")
    assert parsed.definitions == ()
    assert parsed.unrecognized == ('CREATE TYPE "s" .',)


def test_source_digest_ignores_comments_and_spacing_outside_bodies() -> None:
    one = parse_script("-- f\nCREATE FUNCTION s.f() AS $fn$ body $fn$;").definitions[0]
    two = parse_script("CREATE   FUNCTION /* x */ s.f()\n AS $fn$ body $fn$").definitions[0]
    three = parse_script("CREATE FUNCTION s.f() AS $fn$ body  $fn$").definitions[0]
    assert one.source == two.source
    assert one.source != three.source
    assert len(one.source) == fingerprint.SOURCE_DIGEST_LENGTH


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("event_trigger", [True, False])
def test_install_script_defines_what_sql_holds(version: int, event_trigger: bool) -> None:
    """Every CREATE of the install script is understood, and every function
    file under sql/functions/ shows up: nothing is listed by hand."""
    parsed = parse_script(install_sql(Settings(), version, event_trigger=event_trigger))
    assert parsed.unrecognized == ()
    functions = {d.name for d in parsed.definitions if d.kind == "function"}
    files = {f.name.removesuffix(".sql")
             for f in resources.files("auditsql").joinpath("sql", "functions").iterdir()
             if f.name.endswith(".sql")}
    guard = {d.schema for d in parsed.definitions if d.name == "ddl_guard"}
    if event_trigger:
        assert guard == {"auditsql_guard_audit"}  # the event trigger function's own schema
    else:
        assert guard == set()
        files.discard("ddl_guard")
    assert files <= functions
    assert {d.schema for d in parsed.definitions
            if d.kind != "event trigger" and d.name != "ddl_guard"} == {"audit"}
    assert all(d.body for d in parsed.definitions if d.kind == "function")
    guards = {(d.name, d.table) for d in parsed.definitions if d.kind == "trigger"}
    assert guards == {("auditsql_guard_statement", "events"), ("auditsql_guard_row", "events"),
                      ("auditsql_guard_statement", "events_default"),
                      ("auditsql_guard_statement", "retention"), ("auditsql_record", "retention"),
                      ("auditsql_guard_statement", "legal_holds"),
                      ("auditsql_record", "legal_holds")}
    tables = {d.name for d in parsed.definitions if d.kind == "table"}
    assert {"events", "events_default", "tables", "installation"} <= tables
    events = {d.name for d in parsed.definitions if d.kind == "event trigger"}
    assert events == ({"auditsql_ddl_audit", "auditsql_drop_audit"} if event_trigger else set())
    keys = [(d.kind, d.name, d.table) for d in parsed.definitions]
    assert len(keys) == len(set(keys)), "an object defined twice"
    assert {("function", "set_actor"), ("function", "set_request"),
            ("function", "set_context"), ("function", "push_context"),
            ("function", "pop_context"), ("function", "attach"),
            ("function", "detach"), ("function", "erase"), ("function", "refresh"),
            ("schema", "audit")} == parsed.public_grants


def test_install_script_embeds_its_own_definitions() -> None:
    script = install_sql(Settings(), 170000)
    embedded = re.search(r"jsonb_to_recordset\('(\[.*?\])'::jsonb\)", script)
    assert embedded, "no definitions in the stamping step"
    assert json.loads(embedded.group(1).replace("''", "'")) == parse_script(script).as_json()


def test_function_bodies_digest_as_the_server_stores_them() -> None:
    """The body digest is of the text between the dollar quotes: prosrc."""
    script = install_sql(Settings(), 170000)
    guard = next(d for d in parse_script(script).definitions if d.name == "guard")
    body = re.search(r'FUNCTION "audit"\.guard\(\).*?AS \$fn\$(.*?)\$fn\$', script, re.S)
    assert body is not None
    assert guard.body == hashlib.sha256(body.group(1).encode()).hexdigest()


HOSTILE = 'x"\'; DROP TABLE t; -- ;'


def test_hostile_names_are_read_back_exactly() -> None:
    settings = Settings(schema="s" + HOSTILE, owner="o" + HOSTILE, reader="r" + HOSTILE,
                        admin="a" + HOSTILE)
    parsed = parse_script(install_sql(settings, 170000))
    assert parsed.unrecognized == ()
    names = {d.name for d in parsed.definitions}
    assert {"events", "attach", "guard"} <= names
    assert render.event_trigger_name(settings.schema, "ddl") in names
    assert ("schema", settings.schema) in parsed.public_grants


def test_event_trigger_names_fit_and_differ() -> None:
    assert render.event_trigger_name("audit", "ddl") == "auditsql_ddl_audit"
    long_a, long_b = "é" * 31 + "a", "é" * 31 + "b"
    names = {render.event_trigger_name(s, e) for s in (long_a, long_b) for e in ("ddl", "drop")}
    assert len(names) == 4
    assert all(len(n.encode()) <= render.MAX_IDENTIFIER_BYTES for n in names)


def test_install_script_without_event_triggers_refuses_nothing_more() -> None:
    full = install_sql(Settings(), 170000)
    plain = install_sql(Settings(), 170000, event_trigger=False)
    assert "CREATE EVENT TRIGGER" in full and "CREATE EVENT TRIGGER" not in plain
    assert "only a superuser may do" in full and "only a superuser may do" not in plain


# --------------------------------------------------------------------------
# Fingerprint lines
# --------------------------------------------------------------------------


def test_fingerprint_lines() -> None:
    digest = "ab" * 32
    line = fingerprint.format_fingerprint("0.1.0", digest, "cd" * 8)
    assert line == f"auditsql 0.1.0 sha256:{digest} source:{'cd' * 8}"
    comment = "auditsql: the append-only audit log\n" + line
    assert fingerprint.parse_fingerprint(comment) == {
        "version": "0.1.0", "digest": digest, "source": "cd" * 8}
    bare = fingerprint.format_fingerprint("0.1.0", digest)
    assert fingerprint.parse_fingerprint(bare) == {
        "version": "0.1.0", "digest": digest, "source": None}
    assert fingerprint.parse_fingerprint(line + "\nmore") is None
    assert fingerprint.parse_fingerprint("auditsql: the log") is None
    assert fingerprint.parse_fingerprint(None) is None


def test_sql_reads_fingerprints_as_python_does() -> None:
    """The pattern of sql/fingerprint/catalog.sql is FINGERPRINT's."""
    env = render._environment()
    sql_pattern = env.from_string(
        '{% from "fingerprint/catalog.sql" import fingerprint_pattern %}{{ fingerprint_pattern() }}'
    ).render()
    python = fingerprint.FINGERPRINT.pattern
    assert re.sub(r"\?P<\w+>", "", python) == sql_pattern.strip("'")


# --------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------

VERSION = "0.1.0"


@dataclass(frozen=True)
class Obj:
    kind: str
    name: str
    table_name: str | None = None
    identity: str = ""
    implicit: bool = False
    body_digest: str | None = None
    digest: str = "d1"
    stamped_version: str | None = VERSION
    stamped_digest: str | None = "d1"
    stamped_source: str | None = "s1"
    schema_name: str | None = "s"


def definition(kind: str, name: str, table: str | None = None, body: str | None = None,
               source: str = "s1") -> Definition:
    return Definition(kind, "s", name, table, source, body, True)


def script_of(*definitions: Definition) -> fingerprint.Script:
    return fingerprint.Script(tuple(definitions), frozenset(), ())


def states(script: fingerprint.Script, *objects: Obj) -> list[tuple[str, str, str]]:
    return [(s.identity, s.state, s.reason) for s in classify(script, list(objects), VERSION)]


def test_installed_and_missing() -> None:
    script = script_of(definition("function", "f", body="b"), definition("table", "t"))
    assert states(script, Obj("function", "f", identity="s.f()", body_digest="b")) == [
        ("s.f()", INSTALLED, ""), ("t", MISSING, "not in the database")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"stamped_digest": None, "stamped_source": None}, "no fingerprint"),
        ({"digest": "d2"}, "changed since install"),
        ({"stamped_source": "s0", "stamped_version": "0.0.9"},
         "defined differently by this version"),
        ({"stamped_version": "0.0.9"}, "stamped by auditsql 0.0.9"),
    ],
)
def test_outdated(change: dict[str, object], reason: str) -> None:
    found = replace(Obj("table", "t", identity="s.t"), **change)
    [(identity, state, why)] = states(script_of(definition("table", "t")), found)
    assert (identity, state) == ("s.t", OUTDATED)
    assert why.startswith(reason)


def test_a_function_body_that_differs_is_outdated() -> None:
    script = script_of(definition("function", "f", body="new"))
    found = Obj("function", "f", identity="s.f()", body_digest="old")
    assert states(script, found)[0][1] == OUTDATED


def test_an_overload_left_over_is_unexpected() -> None:
    script = script_of(definition("function", "f", body="new", source="s2"))
    old = Obj("function", "f", identity="s.f(int)", body_digest="old", stamped_source="s1")
    new = Obj("function", "f", identity="s.f(int, text)", body_digest="new", stamped_source="s2")
    assert states(script, old, new) == [
        ("s.f(int, text)", INSTALLED, ""),
        ("s.f(int)", UNEXPECTED, "left over from another version"),
    ]


def test_triggers_are_matched_on_their_table() -> None:
    script = script_of(definition("trigger", "g", table="events"),
                       definition("trigger", "g", table="events_default"))
    found = [Obj("trigger", "g", "events_default", "g on s.events_default"),
             Obj("trigger", "g", "events", "g on s.events")]
    assert [s[1] for s in states(script, *found)] == [INSTALLED, INSTALLED]


def test_runtime_objects_and_strangers() -> None:
    script = script_of()
    found = [
        Obj("table", "events_2030_01", identity="p", stamped_source=None),
        Obj("trigger", "auditsql_capture_insert", "orders", "c", stamped_source=None,
            digest="d2"),
        Obj("trigger", "auditsql_capture_delete", "orders", "v", stamped_source=None,
            stamped_version="0.0.9"),
        Obj("table", "extra", identity="x", stamped_digest=None),
        Obj("function", "backdoor", identity="b", stamped_digest=None),
        Obj("index", "events_2030_01_id_idx", identity="i", implicit=True),
    ]
    assert states(script, *found) == [
        ("p", INSTALLED, ""),
        ("c", OUTDATED, "changed since auditsql created it"),
        ("v", OUTDATED, "stamped by auditsql 0.0.9"),
        ("x", UNEXPECTED, "not created by auditsql"),
        ("b", UNEXPECTED, "not created by auditsql"),
    ]


def test_upgrade_recreates_what_install_replaces() -> None:
    replaced = definition("function", "f")
    kept = Definition("table", "s", "t", None, "s1", None, False)
    found = classify(script_of(replaced, kept),
                     [Obj("function", "f", digest="x"), Obj("table", "t", digest="x")], VERSION)
    assert [s.recreated_by_upgrade for s in found] == [True, False]
