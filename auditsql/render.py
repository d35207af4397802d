"""Render the SQL templates in ``sql/``. No database access here.

Templates receive install-time settings only. Identifiers pass through the
``ident`` filter and values through ``literal``; undefined names are errors.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.environment import TemplateModule

from auditsql import __version__, errors

if TYPE_CHECKING:
    from auditsql.fingerprint import Script

MAX_IDENTIFIER_BYTES = 63

# The PostgreSQL major versions auditsql supports, hence those a script may
# be rendered for without asking a server (install --dry-run). The oldest is
# the default there: its script runs on every one of them.
OLDEST_MAJOR = 14
NEWEST_MAJOR = 18
INSTALL_TEMPLATE = "install.sql.j2"
UNINSTALL_TEMPLATE = "uninstall.sql.j2"


def quote_ident(name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier, always with double quotes."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid identifier: {name!r}")
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote ``value`` as a standard-conforming SQL string literal."""
    if "\x00" in value:
        raise ValueError("string literal may not contain NUL")
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Settings:
    """Install-time settings: where auditsql lives and which roles it uses."""

    schema: str = "audit"
    owner: str = "auditsql_owner"
    reader: str = "auditsql_reader"
    writer: str = "auditsql_writer"
    admin: str = "auditsql_admin"
    operator: str = "auditsql_operator"

    def validate(self) -> None:
        """Raise InvalidName unless every name is safe to render.

        Besides the identifier rules, names may not contain control
        characters (they could end an SQL comment) or ``$`` (it could end a
        dollar-quoted function body).
        """
        for value in (self.schema, self.owner, self.reader, self.writer, self.admin,
                      self.operator):
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value) or "$" in value:
                raise errors.InvalidName(
                    f"invalid name {value!r}: control characters and '$' are not allowed"
                )
            try:
                quote_ident(value)
            except ValueError as exc:
                raise errors.InvalidName(str(exc)) from None


def event_trigger_name(schema: str, event: str) -> str:
    """Name of the event trigger guarding ``schema`` on ``event`` (``ddl`` or
    ``drop``): ``auditsql_ddl_audit``; event triggers belong to the database,
    so the name carries the schema, or a digest of it when the schema's name
    is too long to fit."""
    return _derived_name(f"auditsql_{event}_", schema)


def guard_schema_name(schema: str) -> str:
    """The schema of the event trigger function guarding ``schema``:
    ``auditsql_guard_audit``. It belongs to a superuser, so that no member of
    the owner role can replace or drop the function."""
    return _derived_name("auditsql_guard_", schema)


def _derived_name(prefix: str, schema: str) -> str:
    name = prefix + schema
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return name
    return prefix + hashlib.sha256(schema.encode("utf-8")).hexdigest()[:16]


# The templates a rendering reads, while included_templates() listens.
_READ: contextvars.ContextVar[dict[str, None] | None] = contextvars.ContextVar(
    "auditsql_templates_read", default=None)


class _Environment(jinja2.Environment):
    """Jinja's environment, telling included_templates() what it reads:
    includes and imports go through get_template."""

    def get_template(self, name: str | jinja2.Template, *args: Any,
                     **kwargs: Any) -> jinja2.Template:
        read = _READ.get()
        if read is not None and isinstance(name, str):
            read.setdefault(name)
        return super().get_template(name, *args, **kwargs)


@functools.cache
def _environment() -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["ident"] = quote_ident
    env.filters["literal"] = quote_literal
    return env


def included_templates(template: str, context: Mapping[str, object]) -> list[str]:
    """The templates that rendering ``template`` with ``context`` reads, in
    the order it first reads them (``template`` first): its includes and
    imports, those under a false condition left out."""
    read: dict[str, None] = {}
    token = _READ.set(read)
    try:
        _environment().get_template(template).render(context)
    finally:
        _READ.reset(token)
    return list(read)


def template_module(template: str, context: Mapping[str, object]) -> TemplateModule:
    """``template`` rendered with ``context``: str() of it is the text, and
    the variables it sets at its top level are its attributes."""
    return _environment().get_template(template).make_module(dict(context))


def sql_root() -> Path:
    """The folder of SQL files: ``auditsql/sql`` in an installed wheel, the
    repository's ``sql/`` in a checkout (an editable install)."""
    packaged = Path(__file__).with_name("sql")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


def _load(name: str) -> str:
    return (sql_root() / name).read_text(encoding="utf-8")


def _context(settings: Settings, server_version_num: int, event_trigger: bool,
             manifest: str) -> dict[str, object]:
    settings.validate()
    context: dict[str, object] = {
        "schema": settings.schema,
        "owner": settings.owner,
        "reader": settings.reader,
        "writer": settings.writer,
        "admin": settings.admin,
        "operator": settings.operator,
        "version": __version__,
        "server_version_num": server_version_num,
        "event_trigger": event_trigger,
        "guard_schema": guard_schema_name(settings.schema),
        "ddl_trigger": event_trigger_name(settings.schema, "ddl"),
        "drop_trigger": event_trigger_name(settings.schema, "drop"),
        "manifest": manifest,
    }
    context["upgrades"] = _upgrade_steps(context)
    return context


def _upgrade_steps(context: Mapping[str, object]) -> list[dict[str, str]]:
    """Every upgrade step, oldest first, rendered for these settings (see
    ``auditsql.upgrades``): what ``setup/upgrade.sql`` chooses from."""
    from auditsql import upgrades

    env = _environment()
    return [{"source": step.source, "target": step.target,
             "sql": env.get_template(step.template).render(context)}
            for step in upgrades.steps()]


@functools.cache
def event_actions(kind: str) -> tuple[str, ...]:
    """The event actions of one kind (``data``, ``system`` or ``auth``), as
    ``sql/fragments/macros.sql`` lists them for the SQL functions."""
    module = _environment().get_template("fragments/macros.sql").module
    return tuple(getattr(module, f"{kind}_actions"))


def render(template: str, settings: Settings, server_version_num: int, *,
           event_trigger: bool = True) -> str:
    """Render one template from ``sql/`` with the given settings.

    ``event_trigger`` says whether the install creates the event triggers
    that guard audit objects (it needs a superuser).
    """
    context = _context(settings, server_version_num, event_trigger, "[]")
    return _environment().get_template(template).render(context)


def server_version_num(major: int) -> int:
    """``server_version_num`` of a supported major version (16 -> 160000),
    for rendering without a server; InvalidValue for any other."""
    if not OLDEST_MAJOR <= major <= NEWEST_MAJOR:
        raise errors.InvalidValue(
            f"unsupported PostgreSQL major version {major}: use {OLDEST_MAJOR} to {NEWEST_MAJOR}")
    return major * 10000


def uninstall_sql(settings: Settings, *, drop_data: bool, created_roles: list[str]) -> str:
    """The uninstall script for an installation made with ``settings``
    (sql/uninstall.sql.j2): its log kept unless ``drop_data``; the roles in
    ``created_roles`` (those install created) dropped where nothing else
    uses them."""
    context = _context(settings, 0, True, "[]")
    context.update(drop_data=drop_data, created_roles=list(created_roles))
    return _environment().get_template(UNINSTALL_TEMPLATE).render(context)


def install_sql(settings: Settings, server_version_num: int, *,
                event_trigger: bool = True) -> str:
    """The whole install script for a server of the given version.

    The script stamps every object it creates with a fingerprint (see
    ``auditsql.fingerprint``): the list of the objects it defines (read from
    the files it includes, see ``auditsql.manifest``) is embedded in it.
    """
    return _install_sql(settings, server_version_num, event_trigger)


def install_definitions(settings: Settings, server_version_num: int, *,
                        event_trigger: bool = True) -> Script:
    """What the install script for these settings and this server defines."""
    return _install_definitions(settings, server_version_num, event_trigger)


@functools.lru_cache(maxsize=64)
def _install_definitions(settings: Settings, server_version_num: int,
                         event_trigger: bool) -> Script:
    from auditsql import manifest

    return manifest.read(INSTALL_TEMPLATE,
                         _context(settings, server_version_num, event_trigger, "[]"))


@functools.lru_cache(maxsize=64)
def _install_sql(settings: Settings, server_version_num: int, event_trigger: bool) -> str:
    defined = _install_definitions(settings, server_version_num, event_trigger)
    manifest = json.dumps(defined.as_json(), separators=(",", ":"), sort_keys=True)
    template = _environment().get_template(INSTALL_TEMPLATE)
    return template.render(_context(settings, server_version_num, event_trigger, manifest))
