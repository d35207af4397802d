"""docs/sql.md documents every function the install script defines: the
public ones under a heading with the signature the script declares and one
line per parameter, the others in the internal functions table with their
argument types. No database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from auditsql import render
from auditsql.render import Settings, install_definitions

REPO = Path(__file__).resolve().parents[2]
SQL_MD = REPO / "docs" / "sql.md"
SERVER = 180000  # signatures do not depend on it


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next ``## ``."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


class Token(NamedTuple):
    """A token of a function's signature: ``kind`` is word (lower-cased),
    ident (a quoted name, unquoted), string or punct."""

    kind: str
    value: str


# Signatures only: what comes before a function's body, which holds no
# dollar quotes (the body starts at the file's first $fn$).
_TOKEN = re.compile(r"""
    (?P<space>\s+|--[^\n]*)
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<string>'(?:[^']|'')*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<punct>.)""", re.VERBOSE | re.DOTALL)


def tokens(text: str) -> Iterator[Token]:
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        assert kind is not None
        if kind == "word":
            yield Token(kind, m.group().lower())
        elif kind == "ident":
            yield Token(kind, m.group()[1:-1].replace('""', '"'))
        elif kind != "space":
            yield Token(kind, m.group())


# The words that end a function's RETURNS clause.
_ATTRIBUTES = {"language", "immutable", "stable", "volatile", "security", "set", "as",
               "parallel", "strict", "cost", "rows", "called", "leakproof", "support",
               "window", "transform", "external"}


@dataclass(frozen=True)
class Signature:
    """A function as CREATE FUNCTION declares it."""

    name: str
    params: tuple[tuple[Token, ...], ...]  # each: name, type, DEFAULT ...
    returns: tuple[Token, ...]


def split_top_level(toks: list[Token]) -> list[list[Token]]:
    """Tokens split at the commas outside parentheses and brackets."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "punct" and t.value in "([":
            depth += 1
        elif t.kind == "punct" and t.value in ")]":
            depth -= 1
        if depth == 0 and t.kind == "punct" and t.value == ",":
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def parse_signature(toks: list[Token], procedure: bool = False) -> Signature:
    """From ``[schema.]name(params) RETURNS ...`` onwards (a procedure
    returns nothing: no RETURNS)."""
    at = next(i for i, t in enumerate(toks) if t.kind == "punct" and t.value == "(")
    name = toks[at - 1].value
    depth, close = 0, at
    for close in range(at, len(toks)):
        if toks[close].kind == "punct" and toks[close].value in "()":
            depth += 1 if toks[close].value == "(" else -1
            if depth == 0:
                break
    params = tuple(tuple(p) for p in split_top_level(toks[at + 1:close]))
    rest = toks[close + 1:]
    if procedure:
        assert not rest or rest[0].value != "returns", f"{name}: a procedure with RETURNS"
        return Signature(name, params, ())
    assert rest and rest[0].value == "returns", f"{name}: no RETURNS"
    returns: list[Token] = []
    depth = 0
    for t in rest[1:]:
        if t.kind == "punct" and t.value in "()":
            depth += 1 if t.value == "(" else -1
        if depth == 0 and t.kind == "word" and t.value in _ATTRIBUTES:
            break
        returns.append(t)
    return Signature(name, params, tuple(returns))


def words(toks: tuple[Token, ...] | list[Token]) -> list[tuple[str, str]]:
    """Tokens compared as PostgreSQL would: keywords in any case, names unquoted."""
    return [("name" if t.kind in ("word", "ident") else t.kind, t.value) for t in toks]


@pytest.fixture(scope="module")
def defined() -> dict[str, Signature]:
    """Every function the install script (as rendered for a superuser)
    defines, as its file declares it."""
    context = render._context(Settings(), SERVER, True, "[]")
    found: dict[str, Signature] = {}
    for d in install_definitions(Settings(), SERVER).definitions:
        if d.kind != "function":
            continue
        header = str(render.template_module(f"functions/{d.name}.sql", context)).split("$fn$")[0]
        create = re.search(r"^CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE) ", header, re.MULTILINE)
        assert create, d.name
        signature = parse_signature(list(tokens(header[create.end():])),
                                    procedure="PROCEDURE" in create[0])
        assert signature.name == d.name
        found[signature.name] = signature
    return found


def test_every_function_file_is_in_the_install_script(defined: dict[str, Signature]) -> None:
    for path in sorted((REPO / "sql" / "functions").glob("*.sql")):
        names = re.findall(r"CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE) \{\{ \w+ \| ident \}\}\.(\w+)\(",
                           read(path))
        assert names and set(names) <= set(defined), path.name


def documented_public() -> dict[str, tuple[str, str]]:
    """``### `audit.name(...) RETURNS ...` `` headings: name -> (signature, body)."""
    text = read(SQL_MD)
    found: dict[str, tuple[str, str]] = {}
    for m in re.finditer(r"^### `(?:CALL )?audit\.(\w+)(\([^\n]*\)(?: RETURNS [^\n`]*)?)`\n(.*?)(?=^#|\Z)", text,
                         re.MULTILINE | re.DOTALL):
        assert m[1] not in found, f"{m[1]} documented twice"
        found[m[1]] = (f"{m[1]}{m[2]}", m[3])
    return found


def documented_internal() -> dict[str, str]:
    """The rows of the internal functions' table: name -> argument types (as
    written, in parentheses) and their one-line description."""
    table = section(read(SQL_MD), "Internal functions")
    found: dict[str, str] = {}
    for row in re.findall(r"^\| (`.*`) \| (.+) \|$", table, re.MULTILINE):
        functions, description = row
        assert description.strip(), row
        for name, args in re.findall(r"`(\w+(?:<[^>]+>)?)(\([^`]*\))`", functions):
            assert name not in found, f"{name} listed twice"
            found[name] = args
    return found


def test_every_function_is_documented_once(defined: dict[str, Signature]) -> None:
    public, internal = documented_public(), documented_internal()
    generated = {name for name in internal if "<" in name}  # capture_<table oid>()
    assert set(public) & set(internal) == set()
    assert sorted(set(defined) - set(public) - set(internal)) == [], (
        "functions missing from docs/sql.md: document the public ones under a ### heading "
        "with their signature, the others in the internal functions table")
    assert sorted((set(public) | set(internal)) - set(defined) - generated) == [], (
        "docs/sql.md documents functions the install script does not define")


def real_returns(name: str, defined: dict[str, Signature]) -> bool:
    """Whether the install script declares a RETURNS (a procedure has none)."""
    return bool(defined[name].returns)


def test_public_functions_have_their_signature_and_a_line_per_parameter(
        defined: dict[str, Signature]) -> None:
    problems = []
    for name, (heading, body) in documented_public().items():
        documented = parse_signature(list(tokens(heading)), procedure=not real_returns(name, defined))
        real = defined[name]
        if [words(p) for p in documented.params] != [words(p) for p in real.params]:
            problems.append(f"{name}: the parameters differ from the install script's")
        if words(documented.returns) != words(real.returns):
            problems.append(f"{name}: RETURNS differs from the install script's")
        bullets = re.findall(r"^- ((?:`\w+`(?:, )?)+):", body, re.MULTILINE)
        described = [p for b in bullets for p in re.findall(r"`(\w+)`", b)]
        params = [p[0].value for p in real.params]
        if described != params:
            problems.append(f"{name}: a line per parameter, in order, as `- `name`: ...`: "
                            f"{params}, found {described}")
    assert problems == []


def test_internal_functions_have_their_argument_types(defined: dict[str, Signature]) -> None:
    for name, args in documented_internal().items():
        if name not in defined:
            continue
        documented = split_top_level(list(tokens(args))[1:-1])
        assert [words(p) for p in documented] == [words(p[1:]) for p in defined[name].params], (
            f"{name}: the table gives the argument types, defaults included")
