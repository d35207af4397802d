"""render: identifier and literal quoting, and the install script. No database."""

from __future__ import annotations

import re

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditsql import __version__, errors, render
from auditsql.render import Settings, install_sql, quote_ident, quote_literal

# --------------------------------------------------------------------------
# quote_ident
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("orders", '"orders"'),
        ("Mixed Case", '"Mixed Case"'),
        ('a"b', '"a""b"'),
        ('"', '""""'),
        ('x"; DROP TABLE t; --', '"x""; DROP TABLE t; --"'),
        ("it's", '"it\'s"'),
        ("back\\slash", '"back\\slash"'),
        ("ünïcødé", '"ünïcødé"'),
        ("select", '"select"'),
        ("a" * 63, '"' + "a" * 63 + '"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize("name", ["", "a\x00b", "\x00"])
def test_quote_ident_rejects_empty_and_nul(name: str) -> None:
    with pytest.raises(ValueError):
        quote_ident(name)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a" * 63, True),
        ("a" * 64, False),
        ("é" * 31, True),  # 62 bytes
        ("é" * 31 + "a", True),  # 63 bytes, 32 characters
        ("é" * 32, False),  # 64 bytes, 32 characters
        ("€" * 21, True),  # 63 bytes
        ("€" * 21 + "a", False),  # 64 bytes, 22 characters
        ("😀" * 15 + "abc", True),  # 63 bytes
        ("😀" * 16, False),  # 64 bytes, 16 characters
        ('"' * 63, True),  # the limit is on the name, not on its quoted form
    ],
)
def test_quote_ident_limit_is_63_bytes(name: str, ok: bool) -> None:
    assert render.MAX_IDENTIFIER_BYTES == 63
    if ok:
        assert quote_ident(name).startswith('"')
    else:
        with pytest.raises(ValueError, match="63 bytes"):
            quote_ident(name)


def _unquote_ident(quoted: str) -> str:
    assert quoted.startswith('"') and quoted.endswith('"') and len(quoted) >= 2
    inner = quoted[1:-1]
    # every quote inside comes doubled: no lone quote can end the identifier early
    assert re.fullmatch(r'(?:[^"]|"")*', inner), quoted
    return inner.replace('""', '"')


identifiers = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=63,
).filter(lambda s: len(s.encode("utf-8")) <= 63)


@given(identifiers)
def test_quote_ident_round_trips(name: str) -> None:
    assert _unquote_ident(quote_ident(name)) == name


too_long = st.one_of(
    st.text(min_size=64),
    st.text(st.characters(min_codepoint=0x800, max_codepoint=0xFFFF,
                          blacklist_categories=("Cs",)), min_size=22),  # 3 bytes each
)
with_nul = st.tuples(st.text(), st.text()).map(lambda ab: ab[0] + "\x00" + ab[1])


@given(st.one_of(too_long, with_nul))
def test_quote_ident_never_quotes_what_postgres_would_mangle(name: str) -> None:
    """PostgreSQL would silently truncate or reject these: refuse them instead."""
    with pytest.raises(ValueError):
        quote_ident(name)


# --------------------------------------------------------------------------
# quote_literal
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", "''"),
        ("abc", "'abc'"),
        ("it's", "'it''s'"),
        ("''", "''''''"),
        ("back\\slash", "'back\\slash'"),  # standard_conforming_strings: no escapes
        ('"; DROP TABLE t; --', "'\"; DROP TABLE t; --'"),
        ("line\nbreak", "'line\nbreak'"),
        ("é" * 100, "'" + "é" * 100 + "'"),  # no length limit on values
    ],
)
def test_quote_literal(value: str, quoted: str) -> None:
    assert quote_literal(value) == quoted


def test_quote_literal_rejects_nul() -> None:
    with pytest.raises(ValueError):
        quote_literal("a\x00b")


@given(st.text().filter(lambda s: "\x00" not in s))
def test_quote_literal_round_trips(value: str) -> None:
    quoted = quote_literal(value)
    assert quoted[0] == quoted[-1] == "'"
    inner = quoted[1:-1]
    assert re.fullmatch(r"(?:[^']|'')*", inner)
    assert inner.replace("''", "'") == value


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["schema", "owner", "reader"])
@pytest.mark.parametrize("bad", ["", "x" * 64, "é" * 32, "a\x00"])
def test_settings_validate_rejects_bad_names(field: str, bad: str) -> None:
    settings = Settings(**{field: bad})
    with pytest.raises(errors.InvalidName):
        settings.validate()
    with pytest.raises(errors.InvalidName):
        install_sql(settings, 170000)


def test_settings_defaults() -> None:
    assert Settings() == Settings(schema="audit", owner="auditsql_owner", reader="auditsql_reader")


# --------------------------------------------------------------------------
# The install script
# --------------------------------------------------------------------------

VERSIONS = [140000, 140023, 150000, 159999, 160000, 170000, 170011, 180000]


def test_environment_is_strict() -> None:
    env = render._environment()
    assert env.undefined is jinja2.StrictUndefined
    assert env.autoescape is False
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ not_a_setting }}").render()


@pytest.mark.parametrize("version", VERSIONS)
def test_install_script_renders(version: int) -> None:
    script = install_sql(Settings(), version)
    assert "{{" not in script and "{%" not in script and "{#" not in script
    assert 'CREATE SCHEMA IF NOT EXISTS "audit" AUTHORIZATION "auditsql_owner"' in script
    assert 'CREATE TABLE IF NOT EXISTS "audit".events' in script
    assert "SET LOCAL ROLE \"auditsql_owner\"" in script
    assert script.startswith(f"-- auditsql {__version__}: install into schema")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_template_renders_strictly(version: int) -> None:
    """Each file under sql/ renders alone, so none relies on an undefined name."""
    root = render.sql_root()
    names = []
    for sub in root.iterdir():
        if sub.is_dir():
            names += [f"{sub.name}/{f.name}" for f in sub.iterdir() if f.name.endswith(".sql")]
    assert len(names) > 10
    for name in names:
        render.render(name, Settings(), version)


def test_install_script_branches_on_server_version() -> None:
    old = install_sql(Settings(), 150000)
    new = install_sql(Settings(), 160000)
    assert "pg_input_is_valid" not in old and "invalid_text_representation" in old
    assert "pg_input_is_valid" in new
    assert install_sql(Settings(), 140000) == old
    assert install_sql(Settings(), 180000) == new


def test_preflight_refuses_servers_older_than_14() -> None:
    script = install_sql(Settings(), 170000)
    match = re.search(
        r"IF current_setting\('server_version_num'\)::int < (\d+) THEN\s+"
        r"RAISE EXCEPTION '([^']*)'.*?USING ERRCODE = '(\w+)'",
        script,
        re.S,
    )
    assert match, "no server version check in the preflight"
    assert int(match.group(1)) == 140000
    assert "PostgreSQL 14" in match.group(2)
    assert match.group(3) == "feature_not_supported"
    # ...and it runs before anything is created
    assert match.start() < script.index("CREATE ROLE") < script.index("CREATE SCHEMA")


# Both quote characters, so that neither quoted form contains the raw text.
PAYLOAD = "x\"'; DROP TABLE t; --"


def test_hostile_settings_are_quoted() -> None:
    settings = Settings(schema="s" + PAYLOAD, owner="o" + PAYLOAD, reader="r" + PAYLOAD)
    script = install_sql(settings, 170000)
    for name in (settings.schema, settings.owner, settings.reader):
        assert quote_ident(name) in script
    for name in (settings.owner, settings.reader):
        assert quote_literal(name) in script


def test_hostile_settings_never_appear_unquoted() -> None:
    settings = Settings(schema="s" + PAYLOAD, owner="o" + PAYLOAD, reader="r" + PAYLOAD)
    script = install_sql(settings, 170000)
    assert PAYLOAD not in script


def test_newline_in_schema_cannot_start_a_statement() -> None:
    with pytest.raises(errors.InvalidName):
        install_sql(Settings(schema="x\nDROP TABLE t;\n--"), 170000)


def _enclosing_tags(field: str) -> set[str]:
    """Dollar-quote tags of the bodies in which the *field* setting appears."""
    marker = "zzmarkerzz"
    script = install_sql(Settings(**{field: marker}), 170000)
    bodies = re.findall(r"(\$[A-Za-z_]*\$)(.*?)\1", script, re.S)
    assert len(bodies) > 10
    return {tag for tag, body in bodies if marker in body}


@pytest.mark.parametrize("field", ["schema", "owner", "reader"])
def test_dollar_quote_tags_in_names_are_refused(field: str) -> None:
    tags = _enclosing_tags(field)
    assert tags  # every setting is used inside some function or DO body
    for tag in sorted(tags):
        with pytest.raises(errors.InvalidName):
            install_sql(Settings(**{field: f"a{tag}b"}), 170000)


# --------------------------------------------------------------------------
# The capture templates and capture_source
# --------------------------------------------------------------------------

CAPTURE_TEMPLATES = ("templates/capture_row.sql", "templates/capture_statement.sql")


def _capture_slots() -> list[str]:
    module = render._environment().get_template("templates/capture_slots.sql").module
    return list(module.capture_slots)  # type: ignore[attr-defined]


def _sql_source(name: str) -> str:
    return render._load(name)


def test_capture_slots_are_named_once() -> None:
    slots = _capture_slots()
    assert len(slots) == len(set(slots)) > 10
    assert all(re.fullmatch(r"[a-z_]+", name) for name in slots)


def test_slot_gives_each_name_its_place() -> None:
    """slot(name) is %N$s, N the name's place in capture_slots; a name that
    is not there is an error, not an empty slot."""
    env = render._environment()
    template = env.from_string('{% from "templates/capture_slots.sql" import slot %}'
                               "{{ slot(name) }}")
    for number, name in enumerate(_capture_slots(), start=1):
        assert template.render(name=name) == f"%{number}$s"
    with pytest.raises(ValueError, match="not_a_slot"):
        template.render(name="not_a_slot")


@pytest.mark.parametrize("schema", ["audit", "a%s%%b"])
def test_capture_templates_hold_no_stray_format_specifier(schema: str) -> None:
    """Each capture body is a format() template: besides the placeholders of
    its slots (each slot used by one mode at least), every % (a schema name
    may hold one) must come out doubled."""
    Settings(schema=schema).validate()
    count = len(_capture_slots())
    used: set[int] = set()
    for name in CAPTURE_TEMPLATES:
        body = render._environment().get_template(name).render(schema=schema)
        numbers = {int(n) for n in re.findall(r"%([0-9]+)\$s", body)}
        assert numbers <= set(range(1, count + 1)), name
        used |= numbers
        assert "%" not in re.sub(r"%[0-9]+\$s|%%", "", body), name
    assert used == set(range(1, count + 1))


@pytest.mark.parametrize("name", [*CAPTURE_TEMPLATES, "templates/capture_macros.sql"])
def test_capture_templates_write_no_placeholder_by_hand(name: str) -> None:
    """A placeholder comes from slot(name) only: one written as %N$s would
    not follow the slot list."""
    assert not re.search(r"%[0-9]+\$", _sql_source(name)), name


def _format_arguments(source: str) -> list[str]:
    """The arguments capture_source passes to format() after the templates."""
    match = re.search(r"\$tpl\$\s*END,(.*?)\);\s*END\s*\$fn\$;\s*$", source, re.S)
    assert match, "capture_source no longer ends in format(<templates>, <slots>)"
    return [argument.strip() for argument in match.group(1).split(",")]


def test_capture_source_passes_every_slot_in_order() -> None:
    """capture_source fills slot N with its N-th argument after the template:
    that argument must be the variable named for slot N, declared and
    assigned, so that the two sides of the format() call cannot drift."""
    source = render.render("functions/capture_source.sql", Settings(), 180000)
    slots = _capture_slots()
    assert _format_arguments(source) == [f"v_{name}" for name in slots]
    declarations = source[source.index("DECLARE"):source.index("BEGIN")]
    body = source[source.index("BEGIN"):source.index("RETURN format(")]
    into = " ".join(re.findall(r"\bINTO\s+((?:v_\w+\s*,\s*)*v_\w+)", body))
    for name in slots:
        assert re.search(rf"^\s+v_{name}\s+text;", declarations, re.M), name
        assert re.search(rf"\bv_{name}\s*:=", body) or re.search(rf"\bv_{name}\b", into), name


def test_capture_source_renders_both_templates() -> None:
    source = render.render("functions/capture_source.sql", Settings(), 180000)
    for name in CAPTURE_TEMPLATES:
        assert render.render(name, Settings(), 180000) in source, name


# --------------------------------------------------------------------------
# Context settings
# --------------------------------------------------------------------------

# A read of a context setting, in SQL or inside an SQL string literal.
CONTEXT_READ = re.compile(
    r"current_setting\('{1,2}(auditsql\.(actor_id|actor_email|actor_role|ip_address|user_agent"
    r"|request_id)|application_name)'")


def _sql_files() -> list[str]:
    root = render.sql_root()
    return sorted(f"{sub.name}/{f.name}" for sub in root.iterdir() if sub.is_dir()
                  for f in sub.iterdir() if f.name.endswith(".sql"))


def test_context_is_read_through_context_setting_only() -> None:
    """Every function that records context, capture included, reads it with
    context_setting (fragments/macros.sql), so that all of them store the same
    value and decide admin and a missing actor on it. push_context reads the
    settings as they were set, to restore them so (pop_context); capture
    reads them raw only to learn whether any is set before it calls
    settings_context(), which reads them with context_setting; set_context
    stores application_name as it is only where every value is short (else
    settings_context() stores the context), and blank as NULL."""
    readers = {name for name in _sql_files() if CONTEXT_READ.search(_sql_source(name))}
    assert readers == {"functions/push_context.sql", "templates/capture_macros.sql",
                       "functions/set_context.sql"}
    set_context = _sql_source("functions/set_context.sql")
    assert "nullif(v_app, '')" in set_context and "<= 1024" in set_context
    macros = _sql_source("templates/capture_macros.sql")
    assert macros.count("pg_catalog.current_setting('auditsql.") == 7  # auditsql.context and the six
    assert "settings_context()" in macros
    assert "macro context_setting(name)" in _sql_source("fragments/macros.sql")


def test_type_lists_are_named() -> None:
    """Built-in types are listed by name in fragments/type_lists.sql, each
    list with what it is for; no SQL file spells a list of type oids."""
    oid_list = re.compile(r"'\{[0-9]+(,[0-9]+)*\}'::(pg_catalog\.)?oid\[\]")
    assert [name for name in _sql_files() if oid_list.search(_sql_source(name))] == []
    source = render.render("functions/capture_source.sql", Settings(), 180000)
    assert "'{16,18,20,21,23,26,1082,1114,1184,2950}'::oid[]" in source  # typed_types, rendered
