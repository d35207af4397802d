"""SQL literal rendering for the replay tests: values drawn in Python
written as SQL that reads back as exactly that value (or, for values
drawn as text, as the text given)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.property.model import Column, quote


@dataclass(frozen=True)
class Num:
    """A JSON number kept as written (``1.10`` stays ``1.10``)."""

    text: str


JsonValue = None | bool | int | Num | str | list["JsonValue"] | dict[str, "JsonValue"]


def scaled(unscaled: int, scale: int) -> str:
    """``unscaled * 10**-scale`` written with exactly ``scale`` digits."""
    return str(Decimal(unscaled).scaleb(-scale))


def timestamp_text(moment: datetime, offset: str, bc: bool) -> str:
    """A timestamptz literal, possibly BC (where leap years fall elsewhere)."""
    text = moment.isoformat(sep=" ") + offset
    leap_day = (moment.month, moment.day) == (2, 29)
    return text + " BC" if bc and moment.year <= 4000 and not leap_day else text


def json_text(value: JsonValue) -> str:
    """JSON text of ``value``; numbers are written as given."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Num):
        return value.text
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return "{" + ", ".join(f"{json_string(k)}: {json_text(v)}" for k, v in value.items()) + "}"


def json_string(text: str) -> str:
    """A JSON string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if ord(c) >= 0x20 else f"\\u{ord(c):04x}" for c in escaped) + '"'


def interval_text(months: int, days: int, micros: int) -> str:
    """An interval literal with each field given separately."""
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 10**6)
    return f"{months} mons {days} days {sign}{seconds}.{fraction:06d} seconds"


def literal(col: Column, value: Any) -> str:
    """SQL for ``value`` as a value of ``col``'s type."""
    if value is None:
        return f"NULL::{col.type}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{quote(float_text(value))}::{col.type}"
    if isinstance(value, int):
        return f"{value}::{col.type}"
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, list):
        return f"{array_literal(value)}::{col.type}"
    return f"{quote(value)}::{col.type}"


def float_text(value: float) -> str:
    """float8 input text that reads back as exactly ``value``."""
    special = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    return special.get(repr(value), repr(value))


def array_literal(items: list[Any]) -> str:
    """An ARRAY[...] constructor (``'{}'`` when empty)."""
    if not items:
        return "'{}'"
    return "ARRAY[" + ", ".join(element_literal(i) for i in items) + "]"


def element_literal(item: Any) -> str:
    if item is None:
        return "NULL"
    if isinstance(item, list):
        return "[" + ", ".join(element_literal(i) for i in item) + "]"
    if isinstance(item, int):
        return str(item)
    return quote(item)
