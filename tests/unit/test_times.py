"""Times as the filters read them: ages, ISO 8601 times and dates, zones.
No database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditsql import errors, times

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=timezone.utc)
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("text", "ago"), [
    ("30s", timedelta(seconds=30)), ("30m", timedelta(minutes=30)),
    ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)),
])
def test_ages(text: str, ago: timedelta) -> None:
    assert times.parse_time(text, PARIS, now=NOW) == NOW - ago


def test_iso_times_and_dates_read_in_the_zone() -> None:
    assert times.parse_time("2026-05-01", PARIS) == datetime(2026, 4, 30, 22, tzinfo=timezone.utc)
    assert times.parse_time("2026-05-01T12:00", PARIS) == datetime(2026, 5, 1, 10,
                                                                    tzinfo=timezone.utc)
    assert times.parse_time("2026-05-01T12:00+00:00", PARIS) == datetime(
        2026, 5, 1, 12, tzinfo=timezone.utc)
    assert times.parse_time("2026-05-01T12:00Z", PARIS) == datetime(2026, 5, 1, 12,
                                                                     tzinfo=timezone.utc)


@pytest.mark.parametrize("bad", ["", "7", "7 days", "d7", "-7d", "tomorrow", "2026-02-30",
                                 "2026-05-01T25:00", "1e3h"])
def test_bad_times(bad: str) -> None:
    with pytest.raises(errors.InvalidValue, match="invalid time"):
        times.parse_time(bad, PARIS)


# Fixed offsets: an instant in a zone's repeated or skipped hour has no one
# spelling to read back.
OFFSETS = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))


@given(st.datetimes(timezones=OFFSETS))
def test_an_iso_time_reads_back_as_itself(moment: datetime) -> None:
    assert times.parse_time(moment.isoformat(), PARIS) == moment


def test_zones() -> None:
    assert times.zone("UTC").key == "UTC"
    for bad in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(errors.InvalidValue, match="unknown time zone"):
            times.zone(bad)


def test_the_users_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Caracas")
    assert times.zone(None).key == "America/Caracas"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert isinstance(times.zone(None), ZoneInfo)
