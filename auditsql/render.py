"""Render the SQL templates in ``sql/``. No database access here.

Templates receive install-time settings only. Identifiers pass through the
``ident`` filter and values through ``literal``; undefined names are errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import jinja2

from auditsql import __version__, errors

MAX_IDENTIFIER_BYTES = 63


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

    def validate(self) -> None:
        """Raise InvalidName unless every name is safe to render.

        Besides the identifier rules, names may not contain control
        characters (they could end an SQL comment) or ``$`` (it could end a
        dollar-quoted function body).
        """
        for value in (self.schema, self.owner, self.reader, self.writer):
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value) or "$" in value:
                raise errors.InvalidName(
                    f"invalid name {value!r}: control characters and '$' are not allowed"
                )
            try:
                quote_ident(value)
            except ValueError as exc:
                raise errors.InvalidName(str(exc)) from None


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(_load)
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["ident"] = quote_ident
    env.filters["literal"] = quote_literal
    return env


def _load(name: str) -> str:
    path = resources.files("auditsql").joinpath("sql", name)
    return path.read_text(encoding="utf-8")


def render(template: str, settings: Settings, server_version_num: int) -> str:
    """Render one template from ``sql/`` with the given settings."""
    settings.validate()
    return _environment().get_template(template).render(
        schema=settings.schema,
        owner=settings.owner,
        reader=settings.reader,
        writer=settings.writer,
        version=__version__,
        server_version_num=server_version_num,
    )


def install_sql(settings: Settings, server_version_num: int) -> str:
    """The whole install script for a server of the given version."""
    return render("install.sql.j2", settings, server_version_num)
