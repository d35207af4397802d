"""Fingerprints: which objects the install script defines, and the digest of
each definition. No database access here.

Every object auditsql creates carries a fingerprint as the last line of its
COMMENT::

    auditsql 0.1.0 sha256:<digest of its definition> source:<digest of its SQL>

``sha256`` is the digest of the object's definition as the server holds it
(``pg_get_functiondef``, ``pg_get_triggerdef``, the columns of a table...;
see ``sql/fingerprint/catalog.sql``), taken when auditsql created it: an
object changed since then no longer matches. ``source`` is the digest of the
statement in the install script that defines it: an object created by
another version or build of the package does not match what this one
renders. Objects auditsql creates at run time (the triggers ``attach``
creates, monthly partitions) carry no ``source``.

What the install script defines is read from the script itself, rendered
for the installation's settings, by parsing its top-level ``CREATE``
statements: nothing is listed by hand, so a function added to
``sql/install.sql.j2`` is covered as soon as it is rendered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

# Kinds of object, as the catalog query names them.
FUNCTION = "function"
TABLE = "table"
SEQUENCE = "sequence"
INDEX = "index"
VIEW = "view"
MATERIALIZED_VIEW = "materialized view"
TRIGGER = "trigger"
EVENT_TRIGGER = "event trigger"

SOURCE_DIGEST_LENGTH = 16

# CREATE statements that define no fingerprinted object.
_NOT_FINGERPRINTED = {"schema", "role", "extension"}


@dataclass(frozen=True)
class Token:
    """One lexical token: ``kind`` is word, ident (quoted), string, or punct."""

    kind: str
    text: str  # as written
    value: str  # a word lower-cased, an identifier or string unquoted


@dataclass(frozen=True)
class Definition:
    """One object the install script defines."""

    kind: str
    schema: str | None  # its schema (a trigger's or an index's: its table's)
    name: str
    table: str | None  # triggers and indexes: the table they belong to
    source: str  # digest of the defining statement
    body: str | None  # functions: digest of the body, as the server stores it
    replaced: bool  # re-created by every install (not CREATE ... IF NOT EXISTS)

    @property
    def label(self) -> str:
        """How status and verify name it: ``guard()``, ``auditsql_guard_row on events``."""
        if self.kind == FUNCTION:
            return f"{self.name}()"
        if self.table is not None and self.kind == TRIGGER:
            return f"{self.name} on {self.table}"
        return self.name


@dataclass(frozen=True)
class Script:
    """What a rendered install script defines and grants to PUBLIC."""

    definitions: tuple[Definition, ...]
    public_grants: frozenset[tuple[str, str]]  # (object kind, name): ("function", "set_actor")
    unrecognized: tuple[str, ...]  # CREATE statements of a kind not fingerprinted

    def as_json(self) -> list[dict[str, object]]:
        """The definitions, for the install script's stamping step."""
        return [
            {"kind": d.kind, "schema": d.schema, "name": d.name, "table": d.table,
             "source": d.source, "body": d.body, "replaced": d.replaced}
            for d in self.definitions
        ]


# --------------------------------------------------------------------------
# Lexing
# --------------------------------------------------------------------------

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def tokens(script: str) -> Iterator[Token]:
    """The tokens of ``script``, comments and white space left out."""
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if ch.isspace():
            i += 1
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif script.startswith("/*", i):
            i = _skip_block_comment(script, i)
        elif ch == "'" or (ch in "eE" and script.startswith("'", i + 1)):
            start = i
            escapes = ch != "'"
            i += 2 if escapes else 1
            value = []
            while True:
                if i >= n:
                    raise ValueError("unterminated string constant")
                if escapes and script[i] == "\\" and i + 1 < n:
                    value.append(script[i + 1])
                    i += 2
                elif script[i] == "'":
                    if script.startswith("''", i):
                        value.append("'")
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    value.append(script[i])
                    i += 1
            yield Token("string", script[start:i], "".join(value))
        elif ch == '"':
            end = i + 1
            while True:
                end = script.find('"', end)
                if end < 0:
                    raise ValueError("unterminated quoted identifier")
                if script.startswith('""', end):
                    end += 2
                    continue
                break
            text = script[i:end + 1]
            yield Token("ident", text, text[1:-1].replace('""', '"'))
            i = end + 1
        elif ch == "$" and (match := _DOLLAR_TAG.match(script, i)):
            tag = match.group(0)
            end = script.find(tag, match.end())
            if end < 0:
                raise ValueError(f"unterminated dollar-quoted string {tag}")
            yield Token("string", script[i:end + len(tag)], script[match.end():end])
            i = end + len(tag)
        elif match := _WORD.match(script, i):
            yield Token("word", match.group(0), match.group(0).lower())
            i = match.end()
        else:
            yield Token("punct", ch, ch)
            i += 1


def _skip_block_comment(script: str, i: int) -> int:
    depth = 0
    while i < len(script):
        if script.startswith("/*", i):
            depth += 1
            i += 2
        elif script.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise ValueError("unterminated block comment")


def statements(script: str) -> list[list[Token]]:
    """Top-level statements of ``script``, as token lists (``;`` dropped)."""
    result: list[list[Token]] = []
    current: list[Token] = []
    for token in tokens(script):
        if token.kind == "punct" and token.value == ";":
            if current:
                result.append(current)
            current = []
        else:
            current.append(token)
    if current:
        result.append(current)
    return result


def digest(text: str) -> str:
    """Hex SHA-256 of ``text`` in UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_digest(statement: list[Token]) -> str:
    """Digest of a statement, independent of comments and spacing outside
    its string constants and bodies."""
    return digest(" ".join(t.text for t in statement))[:SOURCE_DIGEST_LENGTH]


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


class _Cursor:
    """Reads a statement's tokens left to right."""

    def __init__(self, statement: list[Token]) -> None:
        self.tokens = statement
        self.pos = 0

    def peek(self, *words: str) -> bool:
        """True if the next tokens are these keywords."""
        for offset, word in enumerate(words):
            index = self.pos + offset
            if index >= len(self.tokens):
                return False
            token = self.tokens[index]
            if token.kind != "word" or token.value != word:
                return False
        return True

    def accept(self, *words: str) -> bool:
        if self.peek(*words):
            self.pos += len(words)
            return True
        return False

    def name(self) -> tuple[str | None, str]:
        """A possibly schema-qualified name: (schema, name)."""
        first = self._identifier()
        if self.pos < len(self.tokens) and self.tokens[self.pos].value == "." \
                and self.tokens[self.pos].kind == "punct":
            self.pos += 1
            return first, self._identifier()
        return None, first

    def _identifier(self) -> str:
        token = self.tokens[self.pos]
        if token.kind not in ("word", "ident"):
            raise ValueError(f"expected a name, found {token.text!r}")
        self.pos += 1
        return token.value

    def skip_to(self, word: str) -> bool:
        """Move past the next top-level keyword ``word``."""
        depth = 0
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token.kind == "punct" and token.value == "(":
                depth += 1
            elif token.kind == "punct" and token.value == ")":
                depth -= 1
            elif depth == 0 and token.kind == "word" and token.value == word:
                return True
        return False


def _function_body(statement: list[Token], start: int) -> str | None:
    """The body of a CREATE FUNCTION: the string constant after ``AS``."""
    depth = 0
    for index in range(start, len(statement) - 1):
        token = statement[index]
        if token.kind == "punct" and token.value in "()":
            depth += 1 if token.value == "(" else -1
        elif depth == 0 and token.kind == "word" and token.value == "as" \
                and statement[index + 1].kind == "string":
            return statement[index + 1].value
    return None


def _definition(statement: list[Token]) -> Definition | str | None:
    """The object a CREATE statement defines; its kind's keyword when that
    kind is not fingerprinted; None for other statements."""
    cur = _Cursor(statement)
    if not cur.accept("create"):
        return None
    replaced = not any(
        a.kind == b.kind == c.kind == "word"
        and (a.value, b.value, c.value) == ("if", "not", "exists")
        for a, b, c in zip(statement, statement[1:], statement[2:])
    )
    cur.accept("or", "replace")
    source = source_digest(statement)
    if cur.accept("event", "trigger"):
        return Definition(EVENT_TRIGGER, None, cur.name()[1], None, source, None, replaced)
    cur.accept("constraint")
    if cur.accept("trigger"):
        name = cur.name()[1]
        if not cur.skip_to("on"):
            raise ValueError(f"CREATE TRIGGER {name} without ON")
        schema, table = cur.name()
        return Definition(TRIGGER, schema, name, table, source, None, replaced)
    for words in (("function",), ("procedure",)):
        if cur.accept(*words):
            schema, name = cur.name()
            body = _function_body(statement, cur.pos)
            return Definition(FUNCTION, schema, name, None, source, body and digest(body), replaced)
    cur.accept("unique")
    if cur.accept("index"):
        cur.accept("concurrently")
        cur.accept("if", "not", "exists")
        name = cur.name()[1]
        cur.skip_to("on")
        cur.accept("only")
        schema, table = cur.name()
        return Definition(INDEX, schema, name, table, source, None, replaced)
    for persistence in ("unlogged", "temporary", "temp"):
        cur.accept(persistence)
    for words, kind in ((("table",), TABLE), (("sequence",), SEQUENCE),
                        (("view",), VIEW), (("materialized", "view"), MATERIALIZED_VIEW)):
        if cur.accept(*words):
            cur.accept("if", "not", "exists")
            schema, name = cur.name()
            return Definition(kind, schema, name, None, source, None, replaced)
    return statement[cur.pos].value if cur.pos < len(statement) else "?"


def _public_grants(statement: list[Token]) -> set[tuple[str, str]]:
    """(kind, name) of each object a ``GRANT ... TO PUBLIC`` grants on."""
    cur = _Cursor(statement)
    if not cur.accept("grant") or not cur.skip_to("on"):
        return set()
    grantees_at = next(
        (i for i in range(len(statement) - 1, cur.pos, -1)
         if statement[i].kind == "word" and statement[i].value == "to"), None)
    if grantees_at is None or not any(
            t.kind == "word" and t.value == "public" for t in statement[grantees_at + 1:]):
        return set()
    kind = "table"
    for candidate in ("function", "procedure", "routine", "schema", "table", "sequence"):
        if cur.accept(candidate):
            kind = "function" if candidate in ("procedure", "routine") else candidate
            break
    found = set()
    while cur.pos < grantees_at:
        found.add((kind, cur.name()[1]))
        depth = 0
        while cur.pos < grantees_at:  # past argument lists, up to the next comma
            token = statement[cur.pos]
            cur.pos += 1
            if token.kind == "punct" and token.value == "(":
                depth += 1
            elif token.kind == "punct" and token.value == ")":
                depth -= 1
            elif depth == 0 and token.kind == "punct" and token.value == ",":
                break
    return found


def parse_script(script: str) -> Script:
    """Every object a rendered install script defines, in order."""
    definitions: list[Definition] = []
    grants: set[tuple[str, str]] = set()
    unrecognized: list[str] = []
    for statement in statements(script):
        found = _definition(statement)
        if isinstance(found, Definition):
            definitions.append(found)
        elif isinstance(found, str) and found not in _NOT_FINGERPRINTED:
            unrecognized.append(" ".join(t.text for t in statement[:4]))
        grants |= _public_grants(statement)
    return Script(tuple(definitions), frozenset(grants), tuple(unrecognized))


# The fingerprint line: the last line of a comment (as sql/fingerprint/catalog.sql reads it).
FINGERPRINT = re.compile(
    r"^auditsql (?P<version>[^ ]+) sha256:(?P<digest>[0-9a-f]+)(?: source:(?P<source>[0-9a-f]+))?$"
)


def parse_fingerprint(comment: str | None) -> dict[str, str | None] | None:
    """The fingerprint a comment carries, or None."""
    if not comment:
        return None
    match = FINGERPRINT.match(comment.rsplit("\n", 1)[-1])
    return match.groupdict() if match else None


def format_fingerprint(version: str, definition_digest: str, source: str | None = None) -> str:
    """The fingerprint line of a comment (the format ``audit.stamp`` writes)."""
    line = f"auditsql {version} sha256:{definition_digest}"
    return f"{line} source:{source}" if source else line


# --------------------------------------------------------------------------
# Comparing with the catalog
# --------------------------------------------------------------------------

INSTALLED = "installed"
OUTDATED = "outdated"
MISSING = "missing"
UNEXPECTED = "unexpected"

# Objects auditsql creates at run time, outside the install script: the
# triggers attach creates, monthly partitions and their guards, and the
# capture function attach generates for each table (capture_<table oid>).
# They carry a fingerprint without a source.
RUNTIME_KINDS = (TABLE, TRIGGER)
GENERATED_FUNCTION = re.compile(r"capture_[0-9]+")


def is_generated_capture(kind: str, name: str) -> bool:
    """Whether an object is a capture function that attach generated."""
    return kind == FUNCTION and GENERATED_FUNCTION.fullmatch(name) is not None


class Stamped(Protocol):
    """What classify() needs of a catalog object (auditsql.catalog.CatalogObject)."""

    kind: str
    schema_name: str | None
    name: str
    table_name: str | None
    identity: str
    implicit: bool
    body_digest: str | None
    digest: str
    stamped_version: str | None
    stamped_digest: str | None
    stamped_source: str | None


@dataclass(frozen=True)
class ObjectState:
    """One object and how it compares with what this version creates."""

    kind: str
    identity: str
    state: str  # installed | outdated | missing | unexpected
    reason: str = ""
    defined: Definition | None = None  # what the install script defines, if anything
    found: Stamped | None = None  # the catalog object, if any

    @property
    def recreated_by_upgrade(self) -> bool:
        """Whether running the install script again restores it."""
        if self.defined is not None:
            return self.defined.replaced or self.found is None
        # capture triggers and functions: upgrade attaches again
        return self.kind == TRIGGER or (self.found is not None
                                        and is_generated_capture(self.kind, self.found.name))


def _pick(definition: Definition, candidates: list[Stamped]) -> Stamped | None:
    """The catalog object that stands for ``definition``: for a function with
    overloads, the one whose body is this version's, else one stamped from
    this version's statement."""
    if not candidates:
        return None
    for wanted in (
        lambda o: definition.body is not None and o.body_digest == definition.body,
        lambda o: o.stamped_source == definition.source,
    ):
        for candidate in candidates:
            if wanted(candidate):
                return candidate
    return candidates[0]


def _compare(found: Stamped, version: str, source: str | None, body: str | None,
             created_by: str) -> tuple[str, str]:
    if found.stamped_digest is None:
        return OUTDATED, "no fingerprint"
    if found.stamped_digest != found.digest:
        return OUTDATED, f"changed since {created_by}"
    if body is not None and found.body_digest != body:
        return OUTDATED, "body differs from this version's"
    if source is not None and found.stamped_source != source:
        return OUTDATED, ("defined differently by this version "
                          f"(stamped by auditsql {found.stamped_version})")
    if found.stamped_version != version:
        return OUTDATED, f"stamped by auditsql {found.stamped_version}"
    return INSTALLED, ""


def classify(script: Script, objects: list[Stamped], version: str) -> list[ObjectState]:
    """Each object as installed, outdated, missing or unexpected.

    An object the install script defines is installed when the catalog has
    it, unchanged since it was stamped, stamped from this version's
    statement. An object created at run time (RUNTIME_KINDS) is installed
    when unchanged since it was stamped by this version. Anything else in
    the audit schema, or calling its functions, is unexpected, unless
    PostgreSQL made it along with another object.
    """
    pool = [o for o in objects if not o.implicit]
    used: set[int] = set()
    states: list[ObjectState] = []
    for definition in script.definitions:
        candidates = [
            o for o in pool
            if id(o) not in used and o.kind == definition.kind and o.name == definition.name
            and o.table_name == definition.table
            and (definition.schema is None or o.schema_name == definition.schema)
        ]
        found = _pick(definition, candidates)
        if found is None:
            states.append(ObjectState(definition.kind, definition.label, MISSING,
                                      "not in the database", definition))
            continue
        used.add(id(found))
        state, reason = _compare(found, version, definition.source, definition.body, "install")
        states.append(
            ObjectState(definition.kind, found.identity, state, reason, definition, found))
    for found in pool:
        if id(found) in used:
            continue
        runtime = found.kind in RUNTIME_KINDS or is_generated_capture(found.kind, found.name)
        if runtime and found.stamped_digest is not None:
            state, reason = _compare(found, version, None, None, "auditsql created it")
        else:
            state = UNEXPECTED
            reason = ("left over from another version" if found.stamped_digest is not None
                      else "not created by auditsql")
        states.append(ObjectState(found.kind, found.identity, state, reason, None, found))
    return states
