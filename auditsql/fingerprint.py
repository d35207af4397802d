"""Fingerprints: the objects the install script defines, the digest of each
definition, and how the catalog compares with them. No database access here.

Every object auditsql creates carries a fingerprint as the last line of its
COMMENT::

    auditsql 0.2.0 sha256:<digest of its definition> source:<digest of its file>

``sha256`` is the digest of the object's definition as the server holds it
(``pg_get_functiondef``, ``pg_get_triggerdef``, the columns of a table...;
see ``sql/fingerprint/catalog.sql``), taken when auditsql created it: an
object changed since then no longer matches. ``source`` is the digest of the
file in ``sql/`` that defines it, as rendered: an object created by another
version or build of the package does not match what this one renders.
Objects auditsql creates at run time (the triggers ``attach`` creates,
monthly partitions) carry no ``source``.

What the install script defines is read from the layout of ``sql/`` (see
``auditsql.manifest``): nothing is listed by hand, so a function added to
``sql/install.sql.j2`` is covered as soon as it is rendered.
"""

from __future__ import annotations

import hashlib
import re
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


@dataclass(frozen=True)
class Definition:
    """One object the install script defines."""

    kind: str
    schema: str | None  # its schema (a trigger's or an index's: its table's)
    name: str
    table: str | None  # triggers and indexes: the table they belong to
    source: str  # digest of the file that defines it, as rendered
    body: str | None  # functions: digest of the body, as the server stores it
    replaced: bool  # re-created by every install (tables, sequences, indexes are not)

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

    def as_json(self) -> list[dict[str, object]]:
        """The definitions, for the install script's stamping step."""
        return [
            {"kind": d.kind, "schema": d.schema, "name": d.name, "table": d.table,
             "source": d.source, "body": d.body, "replaced": d.replaced}
            for d in self.definitions
        ]


def digest(text: str) -> str:
    """Hex SHA-256 of ``text`` in UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    this version's file."""
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
    it, unchanged since it was stamped, stamped from this version's file.
    An object created at run time (RUNTIME_KINDS) is installed
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
