"""What the install script defines, read from the layout of ``sql/``. No
database access here.

Each file the install script includes from ``sql/functions``,
``sql/tables`` or ``sql/views`` defines one object named after the file, in
the audit schema: ``functions/attach.sql`` the function ``attach``,
``tables/settings.sql`` the table ``settings``. A file that defines
something else, or several objects, says so in a list at its top, rendered
with the install's settings like the rest of it::

    {%- set defines = [
        {"kind": "table", "name": "events"},
        {"kind": "index", "name": "events_actor_idx", "table": "events"},
    ] %}

(with ``"schema"`` for an object outside the audit schema; an event trigger
has none). What the install script grants to PUBLIC is the list
``public_grants`` of the file that grants it (``setup/grants.sql``), which
renders its GRANT statements from that list.

For each object, ``source`` is the digest of its file as rendered, so an
object made from another version or build of a file does not match; a
function's ``body`` is the digest of the text between the two ``$fn$``
quotes of its file, the source the server keeps for it (``prosrc``).
Functions, views, triggers and event triggers are re-created by every
install; tables, sequences and indexes are created only when missing, and
changed by upgrade steps (``auditsql.upgrades``).

Nothing is listed by hand here: a file added to ``sql/install.sql.j2`` is
covered as soon as it is rendered. tests/upgrade/test_manifest.py installs
the script and checks that the catalog holds exactly what this says.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from auditsql import fingerprint
from auditsql.fingerprint import (
    EVENT_TRIGGER,
    FUNCTION,
    TABLE,
    TRIGGER,
    VIEW,
    Definition,
    Script,
)

# The folders whose files define one object each, named after the file.
ONE_PER_FILE = {"functions": FUNCTION, "tables": TABLE, "views": VIEW}
# The folders whose files may declare what they define.
DEFINING = (*ONE_PER_FILE, "setup")
# Kinds every install re-creates from the current files.
REPLACED = frozenset({FUNCTION, VIEW, TRIGGER, EVENT_TRIGGER})
BODY_QUOTE = "$fn$"


def read(template: str, context: Mapping[str, object]) -> Script:
    """What ``template`` (the install script) defines when rendered with
    ``context``, in the order its files are included."""
    from auditsql import render

    definitions: list[Definition] = []
    public: set[tuple[str, str]] = set()
    for name in render.included_templates(template, context):
        path = PurePosixPath(name)
        if len(path.parts) != 2 or path.parts[0] not in DEFINING:
            continue
        module = render.template_module(name, context)
        text = str(module)
        declared = getattr(module, "defines", None)
        if declared is None and path.parts[0] in ONE_PER_FILE:
            declared = [{"kind": ONE_PER_FILE[path.parts[0]], "name": path.stem}]
        source = fingerprint.digest(text)[:fingerprint.SOURCE_DIGEST_LENGTH]
        for item in declared or ():
            definitions.append(_definition(name, text, source, item, str(context["schema"])))
        public |= {(str(kind), str(object_name))
                   for kind, object_name, *_ in getattr(module, "public_grants", ())}
    return Script(tuple(definitions), frozenset(public))


def _definition(name: str, text: str, source: str, item: Mapping[str, object],
                schema: str) -> Definition:
    kind = str(item["kind"])
    table = item.get("table")
    return Definition(
        kind=kind,
        schema=None if kind == EVENT_TRIGGER else str(item.get("schema", schema)),
        name=str(item["name"]),
        table=None if table is None else str(table),
        source=source,
        body=fingerprint.digest(function_body(name, text)) if kind == FUNCTION else None,
        replaced=kind in REPLACED,
    )


def function_body(name: str, text: str) -> str:
    """The body of the function a file defines: the text between its two
    ``$fn$`` quotes (ValueError unless there are exactly two)."""
    parts = text.split(BODY_QUOTE)
    if len(parts) != 3:
        raise ValueError(
            f"sql/{name}: a function's file quotes its body with {BODY_QUOTE} exactly once "
            f"(found {len(parts) - 1} {BODY_QUOTE})")
    return parts[1]
