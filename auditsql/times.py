"""Times as people type them, in the zone they read them in: ``7d``, ``12h``,
``30m`` ago, an ISO 8601 time or a date; and the zone to show times in (the
user's own, or one named)."""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from auditsql import errors

# An age: a whole number and one unit (s, m, h, d, w).
_AGE = re.compile(r"(\d{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FORMS = "an age such as 7d, 12h or 30m, an ISO 8601 time such as 2026-05-01T12:00, or a date"


def zone(name: str | None = None) -> ZoneInfo:
    """The zone called ``name`` (an IANA name such as Europe/Paris, or UTC);
    None: the user's own zone (TZ, else /etc/localtime, else UTC)."""
    if name is None:
        return local_zone()
    try:
        if not name or name.startswith(("/", ".")) or "\x00" in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise errors.InvalidValue(
            f"unknown time zone {name!r}: use a name such as UTC or Europe/Paris") from exc


def local_zone() -> ZoneInfo:
    """The user's zone, by its name: the server is told it by name too."""
    for candidate in (os.environ.get("TZ", "").removeprefix(":"), _etc_localtime()):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _etc_localtime() -> str:
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return ""
    _, found, key = target.partition("/zoneinfo/")
    return key if found else ""


def parse_time(text: str, tz: tzinfo, *, now: datetime | None = None) -> datetime:
    """An aware time from ``text``: an age before ``now`` (``7d``), or an
    ISO 8601 time or date read in ``tz`` unless it names its own offset."""
    value = text.strip()
    age = _AGE.fullmatch(value)
    if age:
        moment = now or datetime.now(timezone.utc)
        return moment - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=tz)
        found = datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidValue(f"invalid time {text!r}: use {_FORMS}") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=tz)


def show(moment: datetime, tz: tzinfo) -> str:
    """A time for a person: to the second, with its offset from UTC."""
    return moment.astimezone(tz).isoformat(sep=" ", timespec="seconds")
