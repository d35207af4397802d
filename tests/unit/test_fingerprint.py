"""fingerprint and manifest: what the install script defines, read from the
layout of sql/, digests, and comparing with the catalog. No database
(tests/upgrade/test_manifest.py installs the script and compares)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace

import pytest

from auditsql import fingerprint, manifest, render
from auditsql.fingerprint import (
    INSTALLED,
    MISSING,
    OUTDATED,
    UNEXPECTED,
    Definition,
    classify,
)
from auditsql.render import Settings, install_definitions, install_sql

VERSIONS = [140000, 150000, 160000, 170000, 180000]


def context(settings: Settings = Settings(), version: int = 170000,
            event_trigger: bool = True) -> dict[str, object]:
    return render._context(settings, version, event_trigger, "[]")


def sql_files(folder: str) -> set[str]:
    return {f.name.removesuffix(".sql")
            for f in (render.sql_root() / folder).iterdir()
            if f.name.endswith(".sql")}


# --------------------------------------------------------------------------
# Definitions, from the layout of sql/
# --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("event_trigger", [True, False])
def test_install_script_defines_what_sql_holds(version: int, event_trigger: bool) -> None:
    """Every file under sql/functions, sql/tables and sql/views shows up,
    named after the file, and the files that declare their objects add
    theirs: nothing is listed by hand."""
    parsed = install_definitions(Settings(), version, event_trigger=event_trigger)
    functions = {d.name for d in parsed.definitions if d.kind == "function"}
    files = sql_files("functions")
    guard = {d.schema for d in parsed.definitions if d.name == "ddl_guard"}
    if event_trigger:
        assert guard == {"auditsql_guard_audit"}  # the event trigger function's own schema
    else:
        assert guard == set()
        files.discard("ddl_guard")
    assert files == functions
    assert {d.schema for d in parsed.definitions
            if d.kind != "event trigger" and d.name != "ddl_guard"} == {"audit"}
    assert all(d.body for d in parsed.definitions if d.kind == "function")
    guards = {(d.name, d.table) for d in parsed.definitions if d.kind == "trigger"}
    assert guards == {("auditsql_guard_statement", "events"), ("auditsql_guard_row", "events"),
                      ("auditsql_guard_statement", "events_default"),
                      ("auditsql_guard_statement", "retention"), ("auditsql_record", "retention"),
                      ("auditsql_guard_statement", "legal_holds"),
                      ("auditsql_record", "legal_holds"),
                      ("auditsql_guard_statement", "seal_blocks"),
                      ("auditsql_guard_statement", "seal_head"),
                      ("auditsql_guard_statement", "seal_erasures"),
                      ("auditsql_guard_statement", "seal_retired")}
    tables = {d.name for d in parsed.definitions if d.kind == "table"}
    assert tables == sql_files("tables") | {"events_default"}
    assert {d.name for d in parsed.definitions if d.kind == "view"} == sql_files("views")
    assert {(d.name, d.table) for d in parsed.definitions if d.kind in ("index", "sequence")} == {
        ("events_id_seq", None), ("events_entity_idx", "events"),
        ("events_actor_idx", "events"), ("events_brin", "events"),
        ("events_request_id_idx", "events"),
        ("events_previous_entity_id_idx", "events")}
    events = {d.name for d in parsed.definitions if d.kind == "event trigger"}
    assert events == ({"auditsql_ddl_audit", "auditsql_drop_audit"} if event_trigger else set())
    keys = [(d.kind, d.name, d.table) for d in parsed.definitions]
    assert len(keys) == len(set(keys)), "an object defined twice"
    assert {("function", "set_actor"), ("function", "set_request"),
            ("function", "set_context"), ("function", "push_context"),
            ("function", "pop_context"), ("function", "settings_context"),
            ("function", "current_context"), ("function", "attach"),
            ("function", "detach"), ("function", "erase"), ("function", "refresh"),
            ("schema", "audit")} == parsed.public_grants


def test_each_function_file_creates_the_function_it_is_named_after() -> None:
    """The name comes from the file: the file must create that function,
    and only that one."""
    ctx = context()
    for name in sql_files("functions"):
        text = str(render.template_module(f"functions/{name}.sql", ctx))
        created = re.findall(r"^CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE) ([^(\s]+)\(", text, re.M)
        schema = "auditsql_guard_audit" if name == "ddl_guard" else "audit"
        assert created == [f'"{schema}".{name}'], name


def test_replaced_follows_the_kind() -> None:
    """Functions, views and triggers are re-created by every install;
    tables, sequences and indexes are changed by upgrade steps only."""
    parsed = install_definitions(Settings(), 170000)
    replaced = {d.kind for d in parsed.definitions if d.replaced}
    kept = {d.kind for d in parsed.definitions if not d.replaced}
    assert replaced == {"function", "view", "trigger", "event trigger"}
    assert kept == {"table", "sequence", "index"}


def test_source_is_the_digest_of_the_rendered_file() -> None:
    ctx = context()
    parsed = install_definitions(Settings(), 170000)
    by_name = {(d.kind, d.name, d.table): d for d in parsed.definitions}
    for key, file in [(("function", "guard", None), "functions/guard.sql"),
                      (("table", "events", None), "tables/events.sql"),
                      (("index", "events_actor_idx", "events"), "tables/events.sql"),
                      (("trigger", "auditsql_guard_row", "events"), "setup/guards.sql")]:
        text = str(render.template_module(file, ctx))
        assert by_name[key].source == fingerprint.digest(text)[:fingerprint.SOURCE_DIGEST_LENGTH]
    assert len({d.source for d in parsed.definitions if d.kind == "function"}) == \
        len([d for d in parsed.definitions if d.kind == "function"])
    other = install_definitions(Settings(schema="elsewhere"), 170000)
    assert {d.name: d.source for d in other.definitions}["guard"] != by_name[
        ("function", "guard", None)].source


@pytest.mark.parametrize("text", ["CREATE FUNCTION f() AS 'x'",
                                  "AS $fn$ a $fn$ -- $fn$ b $fn$"])
def test_a_function_file_quotes_its_body_once(text: str) -> None:
    with pytest.raises(ValueError, match=r"sql/functions/f\.sql"):
        manifest.function_body("functions/f.sql", text)


def test_install_script_embeds_its_own_definitions() -> None:
    script = install_sql(Settings(), 170000)
    embedded = re.search(r"jsonb_to_recordset\('(\[.*?\])'::jsonb\)", script)
    assert embedded, "no definitions in the stamping step"
    assert json.loads(embedded.group(1).replace("''", "'")) == \
        install_definitions(Settings(), 170000).as_json()


def test_function_bodies_digest_as_the_server_stores_them() -> None:
    """The body digest is of the text between the dollar quotes: prosrc."""
    script = install_sql(Settings(), 170000)
    guard = next(d for d in install_definitions(Settings(), 170000).definitions
                 if d.name == "guard")
    body = re.search(r'FUNCTION "audit"\.guard\(\).*?AS \$fn\$(.*?)\$fn\$', script, re.S)
    assert body is not None
    assert guard.body == hashlib.sha256(body.group(1).encode()).hexdigest()


def test_included_templates_follow_the_conditions() -> None:
    """What the script includes is what it renders: the event trigger file
    only when it creates event triggers."""
    with_guard = render.included_templates("install.sql.j2", context())
    without = render.included_templates("install.sql.j2", context(event_trigger=False))
    assert with_guard[0] == "install.sql.j2"
    assert {"setup/event_trigger.sql", "functions/ddl_guard.sql"} <= set(with_guard)
    assert not {"setup/event_trigger.sql", "functions/ddl_guard.sql"} & set(without)
    assert with_guard.index("functions/guard.sql") < with_guard.index("setup/guards.sql")


HOSTILE = 'x"\'; DROP TABLE t; -- ;'


def test_hostile_names_are_read_back_exactly() -> None:
    settings = Settings(schema="s" + HOSTILE, owner="o" + HOSTILE, reader="r" + HOSTILE,
                        admin="a" + HOSTILE)
    parsed = install_definitions(settings, 170000)
    names = {d.name for d in parsed.definitions}
    assert {"events", "attach", "guard"} <= names
    assert render.event_trigger_name(settings.schema, "ddl") in names
    assert {d.schema for d in parsed.definitions if d.name == "ddl_guard"} == {
        render.guard_schema_name(settings.schema)}
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
    return fingerprint.Script(tuple(definitions), frozenset())


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
