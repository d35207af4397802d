"""No slip of the keyboard destroys audit data: a policy needs its units,
is at most 100 years, keeps events for a year at least and is not shortened
unless that is said explicitly; and the preview of a retention run counts
exactly what the run removes, changing nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.server import Server
from tests.sql.sqltools import Conn, column, expect_error, run, scalar

from .test_retention import T, add_events, months_from_now, partitions, system_events, utc

HYPOTHESIS = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def policy(conn: Conn) -> tuple[str, str] | None:
    row = conn.execute("SELECT policy, keep::text AS keep FROM audit.retention").fetchone()
    return (row["policy"], row["keep"]) if row else None


def state(conn: Conn) -> dict[str, Any]:
    """Everything a refused or read-only call must leave as it was."""
    return {
        "policy": conn.execute("SELECT * FROM audit.retention").fetchall(),
        "holds": conn.execute("SELECT * FROM audit.legal_holds ORDER BY 1, 2").fetchall(),
        "partitions": conn.execute("SELECT partition::oid, name FROM audit.event_partitions()"
                                   " ORDER BY 2").fetchall(),
        "events": column(conn, "SELECT id FROM audit.events ORDER BY id"),
        "default": scalar(conn, "SELECT count(*) FROM audit.events_default"),
    }


@pytest.fixture
def saas(su: Conn) -> Conn:
    su.execute("SET IntervalStyle = 'postgres'")
    su.execute("SELECT audit.set_retention('saas')")
    return su


# --------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------

NO_UNIT = ["7", "84", " 7 ", "+7", "7.5", "0.5", "1 year 7", "7 years 1", "10:00", "1 day 10:00 5",
           "@ 7", "1-2", "P7", "PT7", "P 84"]
WITH_UNITS = [("7 years", "7 years"), ("84 months", "7 years"), ("7 y", "7 years"),
              ("P7Y", "7 years"), ("P6Y12M", "7 years"), ("@ 7 years", "7 years"),
              ("6 years 12 months", "7 years"), ("2557 days", "2557 days"),
              ("3 years 12:00:00", "3 years 12:00:00"), ("P3YT12H", "3 years 12:00:00")]


def test_a_number_needs_its_unit(saas: Conn) -> None:
    before = state(saas)
    for bad in NO_UNIT:
        error = expect_error(saas, "SELECT audit.set_retention(%s, true, true)", (bad,),
                             sqlstate="22023", contains="a unit is required")
        assert "'7 years', not '7'" in str(error), bad
        expect_error(saas, "SELECT audit.retention_interval(%s)", (bad,), sqlstate="22023",
                     contains="without a unit")
    assert state(saas) == before


@given(st.integers(min_value=-10**12, max_value=10**12), st.sampled_from(["", " ", "  "]),
       st.sampled_from(["", "+", "@ "]))
@HYPOTHESIS
def test_no_bare_number_is_ever_a_policy(saas: Conn, number: int, space: str,
                                         prefix: str) -> None:
    text = f"{space}{prefix}{number}{space}"
    expect_error(saas, "SELECT audit.set_retention(%s, true, true)", (text,),
                 sqlstate="22023", contains="unit")
    assert policy(saas) == ("saas", "3 years")


def test_intervals_with_units_are_policies(saas: Conn) -> None:
    for text, keep in WITH_UNITS:
        with saas.transaction(force_rollback=True):
            saas.execute("SELECT audit.set_retention(%s)", (text,))
            assert policy(saas) == ("custom", keep), text


def test_too_long_says_so_with_the_maximum(saas: Conn, pg: Server) -> None:
    too_long = ["10000 years", "101 years", "100 years 1 day", "1201 months", "36526 days",
                "1000000000 years", "99999999999999999999 years", "100000000 days"]
    if pg.version_num >= 170000:  # infinite intervals
        too_long.append("infinity")
    before = state(saas)
    for text in too_long:
        error = expect_error(saas, "SELECT audit.set_retention(%s)", (text,), sqlstate="22023",
                             contains="too long")
        assert "at most 100 years" in str(error) and "unknown" not in str(error), text
    assert state(saas) == before
    saas.execute("SELECT audit.set_retention('100 years')")
    assert policy(saas) == ("custom", "100 years")


def test_other_bad_text_is_an_unknown_policy(saas: Conn) -> None:
    for text in ("forever", "", "   ", "7 yeers", "seven years", "financial; DROP TABLE x",
                 "-", "P", "7 years'); --", None):
        expect_error(saas, "SELECT audit.set_retention(%s)", (text,), sqlstate="22023",
                     contains="unknown retention policy")
    for text in ("-1 year", "0 days", "1 year -13 months", "7 years ago", "-1000000000 years"):
        expect_error(saas, "SELECT audit.set_retention(%s, true, true)", (text,),
                     sqlstate="22023", contains="longer than zero")
    assert policy(saas) == ("saas", "3 years")


# --------------------------------------------------------------------------
# At least a year, unless said
# --------------------------------------------------------------------------


def year_before(now: datetime) -> datetime:
    """A year before *now*, as a calendar reads it (29 February goes to the 28th)."""
    try:
        return now.replace(year=now.year - 1)
    except ValueError:
        return now.replace(year=now.year - 1, day=28)


def test_a_policy_under_a_year_must_be_asked_for(su: Conn) -> None:
    su.execute("SET IntervalStyle = 'postgres'")
    su.execute("SET TimeZone = 'Pacific/Kiritimati'")  # compared in UTC all the same
    for text in ("1 day", "7 days", "6 months", "11 months", "360 days", "52 weeks", "P11M",
                 "11 months 27 days"):
        before = state(su)
        expect_error(su, "SELECT audit.set_retention(%s)", (text,), sqlstate="22023",
                     contains="less than a year; pass p_under_a_year => true")
        assert state(su) == before, text
        with su.transaction(force_rollback=True):
            su.execute("SELECT audit.set_retention(%s, p_under_a_year => true)", (text,))
            assert scalar(su, "SELECT policy FROM audit.retention") == "custom"
    for text in ("1 year", "12 months", "366 days", "P1Y", "53 weeks", "saas"):
        with su.transaction(force_rollback=True):
            su.execute("SELECT audit.set_retention(%s)", (text,))


def test_a_year_is_judged_on_the_calendar_not_by_interval_ordering(su: Conn) -> None:
    # Interval ordering counts a month as 30 days: it would let '360 days'
    # pass for a year.
    assert scalar(su, "SELECT interval '360 days' >= interval '1 year'") is True
    with su.transaction(force_rollback=True):
        now = scalar(su, "SELECT now()").astimezone(timezone.utc)
        under = now - timedelta(days=365) > year_before(now)  # a 29 February in the last year
        row = su.execute("SELECT * FROM audit.retention_change('365 days')").fetchone()
        assert row is not None and row["under_a_year"] is under
        [days_360] = column(su, "SELECT under_a_year FROM audit.retention_change('360 days')")
        assert days_360 is True


# --------------------------------------------------------------------------
# Not shortened, unless said
# --------------------------------------------------------------------------


def test_shortening_must_be_asked_for(su: Conn) -> None:
    su.execute("SET IntervalStyle = 'postgres'")
    su.execute("SELECT audit.set_retention('financial')")
    for text in ("medical", "6 years", "83 months", "saas", "6 years 11 months"):
        before = state(su)
        error = expect_error(su, "SELECT audit.set_retention(%s)", (text,), sqlstate="22023",
                             contains="less time than the policy in force, financial (7 years)")
        assert "p_shorten => true" in str(error)
        assert "retention_preview" in (error.diag.message_hint or "")
        assert state(su) == before
    # As long, or longer: no flag needed.
    for text in ("7 years", "84 months", "P7Y", "8 years"):
        with su.transaction(force_rollback=True):
            su.execute("SELECT audit.set_retention(%s)", (text,))
    su.execute("SELECT audit.set_retention('medical', p_shorten => true)")
    assert policy(su) == ("medical", "5 years")
    assert [e["after"]["keep"] for e in system_events(su, "retention_policy_set")] == [
        "7 years", "5 years"]


def test_shortening_below_a_year_needs_both(su: Conn) -> None:
    su.execute("SELECT audit.set_retention('saas')")
    expect_error(su, "SELECT audit.set_retention('6 months', p_shorten => true)",
                 sqlstate="22023", contains="less than a year")
    expect_error(su, "SELECT audit.set_retention('6 months', p_under_a_year => true)",
                 sqlstate="22023", contains="less time than the policy in force")
    su.execute("SELECT audit.set_retention('6 months', p_under_a_year => true, p_shorten => true)")
    # The policy in force, again: nothing changes, so nothing to allow.
    count = scalar(su, "SELECT count(*) FROM audit.events")
    su.execute("SELECT audit.set_retention('6 months')")
    assert scalar(su, "SELECT count(*) FROM audit.events") == count
    su.execute("SELECT audit.set_retention('7 months', p_under_a_year => true)")  # longer
    expect_error(su, "SELECT audit.set_retention('5 months', p_under_a_year => true)",
                 sqlstate="22023", contains="less time")


def test_retention_change_says_what_a_policy_would_mean(su: Conn) -> None:
    su.execute("SET IntervalStyle = 'postgres'")
    rows = {p: su.execute("SELECT policy, keep::text AS keep, under_a_year, shortens"
                          " FROM audit.retention_change(%s)", (p,)).fetchone()
            for p in ("saas", "2 years", "6 months")}
    assert rows["saas"] == {"policy": "saas", "keep": "3 years", "under_a_year": False,
                            "shortens": False}  # no policy in force yet
    su.execute("SELECT audit.set_retention('saas')")
    assert su.execute("SELECT under_a_year, shortens FROM audit.retention_change('2 years')"
                      ).fetchone() == {"under_a_year": False, "shortens": True}
    assert su.execute("SELECT under_a_year, shortens FROM audit.retention_change('6 months')"
                      ).fetchone() == {"under_a_year": True, "shortens": True}
    assert rows["6 months"]["keep"] == "6 mons"  # type: ignore[index]


# --------------------------------------------------------------------------
# The preview counts exactly what a run removes
# --------------------------------------------------------------------------


def result(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["partition"], r["range_from"], r["range_to"], r["rows_removed"], r["rows_kept"])
            for r in rows]


@pytest.fixture
def months(su: Conn) -> Conn:
    """Policy saas; events in partitions of December 2019 to March 2020;
    entity 1001 held, with events in December (with others) and all of
    January's; February empty."""
    run(su, "SELECT audit.ensure_partitions('2019-12-01 00:00+00', 4)",
        "SELECT audit.set_retention('saas')")
    add_events(su, ["2019-12-01", "2019-12-31 23:59:59.999999", "2020-03-10"], entity_id="7")
    add_events(su, ["2019-12-05", "2020-01-10", "2020-01-20"], entity_id="1001")
    su.execute("SELECT audit.place_hold(%s, '1001', 'case 7')", (T,))
    return su


AS_OF = ["2022-12-31 23:59:59.999999", "2023-01-01", "2023-02-01", "2023-03-01", "2023-04-01",
         "2023-05-01"]


def test_the_preview_is_what_apply_retention_removes(months: Conn) -> None:
    for as_of in AS_OF:
        with months.transaction(force_rollback=True):
            before = state(months)
            preview = months.execute("SELECT * FROM audit.retention_preview(NULL, %s)",
                                     (utc(as_of),)).fetchall()
            assert state(months) == before  # the preview changes nothing
            assert system_events(months, "retention_applied") == []
            applied = months.execute("SELECT * FROM audit.apply_retention(%s)",
                                     (utc(as_of),)).fetchall()
            assert result(preview) == result(applied), as_of
    with months.transaction(force_rollback=True):
        rows = months.execute("SELECT * FROM audit.retention_preview(NULL, %s)",
                              (utc("2023-04-01"),)).fetchall()
        # December: 2 removed, 1 held; January: all held, kept as is (not
        # listed); February: empty, dropped; March: 1.
        assert [(r["partition"], r["rows_removed"], r["rows_kept"]) for r in rows] == [
            ("events_2019_12", 2, 1), ("events_2020_02", 0, 0), ("events_2020_03", 1, 0)]


def test_a_policy_can_be_previewed_before_it_is_set(months: Conn) -> None:
    with months.transaction(force_rollback=True):
        preview = months.execute("SELECT * FROM audit.retention_preview('1 year')").fetchall()
        months.execute("SELECT audit.set_retention('1 year', p_shorten => true)")
        assert result(preview) == result(months.execute(
            "SELECT * FROM audit.apply_retention()").fetchall())
        assert len(preview) == 3


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str], str, str]:
    """Events (time, entity id) over 2018-2019, holds, a policy and as_of."""
    times = st.datetimes(min_value=datetime(2018, 1, 1), max_value=datetime(2019, 12, 31))
    entities = st.sampled_from(["1", "2", "3", "4"])
    evts = draw(st.lists(st.tuples(times.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f")),
                                   entities), min_size=1, max_size=30))
    held = draw(st.lists(entities, unique=True, max_size=3))
    keep = draw(st.sampled_from(["1 year", "18 months", "400 days", "2 years", "P1Y6M"]))
    as_of = draw(st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2022, 1, 1)))
    return evts, held, keep, as_of.strftime("%Y-%m-%d %H:%M:%S.%f")


@given(logs())
@HYPOTHESIS
def test_preview_and_apply_agree_on_any_log(su: Conn,
                                            log: tuple[list[tuple[str, str]], list[str], str, str]
                                            ) -> None:
    evts, held, keep, as_of = log
    with su.transaction(force_rollback=True):
        su.execute("SELECT audit.ensure_partitions('2018-01-01', 24)")
        su.execute("SELECT audit.set_retention(%s)", (keep,))
        for at, entity in evts:
            add_events(su, [at], entity_id=entity)
        for entity in held:
            su.execute("SELECT audit.place_hold(%s, %s, 'r', p_future => true)", (T, entity))
        preview = su.execute("SELECT * FROM audit.retention_preview(NULL, %s)",
                             (utc(as_of),)).fetchall()
        ids = set(column(su, "SELECT id FROM audit.events WHERE category = 'data'"))
        applied = su.execute("SELECT * FROM audit.apply_retention(%s)", (utc(as_of),)).fetchall()
        assert result(preview) == result(applied)
        left = set(column(su, "SELECT id FROM audit.events WHERE category = 'data'"))
        assert len(ids - left) == sum(r["rows_removed"] for r in preview)


def test_the_preview_can_count_what_maintenance_first_moves(su: Conn) -> None:
    su.execute("SELECT audit.set_retention('saas')")
    add_events(su, ["2015-03-02", "2015-03-03", "2015-07-01"], entity_id="9")  # default partition
    add_events(su, ["2015-03-04"], entity_id="10")
    su.execute("SELECT audit.place_hold(%s, '10', 'r')", (T,))
    assert su.execute("SELECT * FROM audit.retention_preview()").fetchall() == []
    preview = su.execute("SELECT * FROM audit.retention_preview(p_with_default => true)").fetchall()
    assert [(r["partition"], r["rows_removed"], r["rows_kept"]) for r in preview] == [
        ("events_2015_03", 2, 1), ("events_2015_07", 1, 0)]
    su.execute("SELECT * FROM audit.maintain()")
    assert result(preview) == result(su.execute("SELECT * FROM audit.apply_retention()").fetchall())


def test_the_preview_may_look_ahead(su: Conn) -> None:
    """Unlike apply_retention's, the preview's as_of may be in the future:
    what goes then, with the partitions and holds as they are now."""
    su.execute("SELECT audit.set_retention('saas')")
    now = scalar(su, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
    add_events(su, [now], entity_id="1")
    add_events(su, [now], entity_id="2")
    su.execute("SELECT audit.place_hold(%s, '2', 'r')", (T,))
    month = months_from_now(su, 1)[0]
    count = f"SELECT count(*) FROM audit.{month}"
    kept = scalar(su, count + " WHERE entity_type = %s AND entity_id = '2'", (T,))
    later = "SELECT * FROM audit.retention_preview(NULL, now() + %s::interval)"
    assert month not in [r["partition"] for r in su.execute(later, ("3 years",))]
    [row] = [r for r in su.execute(later, ("3 years 2 months",)) if r["partition"] == month]
    assert (row["rows_removed"], row["rows_kept"]) == (scalar(su, count) - kept, kept)
    assert kept >= 1


def test_the_preview_takes_no_lock_but_reading(months: Conn, installed_db: str) -> None:
    """It takes no lock beyond what reading takes: none that would hold up a
    writer or a hold being placed."""
    with psycopg.connect(installed_db) as conn:
        assert conn.execute("SELECT * FROM audit.retention_preview(NULL, now(), true)").fetchall()
        modes = column(months, "SELECT DISTINCT mode FROM pg_locks"
                               " WHERE pid = %s AND locktype = 'relation'",
                       (conn.info.backend_pid,))
    assert modes == ["AccessShareLock"]


def test_bad_previews_are_refused(su: Conn) -> None:
    expect_error(su, "SELECT * FROM audit.retention_preview()", sqlstate="55000",
                 contains="no retention policy")
    for call in ("SELECT * FROM audit.retention_preview('1 year', NULL)",
                 "SELECT * FROM audit.retention_preview('1 year', 'infinity')",
                 "SELECT * FROM audit.retention_preview('-1 year')",
                 "SELECT * FROM audit.retention_preview('0')"):
        expect_error(su, call, sqlstate="22023")


# --------------------------------------------------------------------------
# The preview of maintenance is what maintenance does
# --------------------------------------------------------------------------


def test_maintain_preview_is_what_maintain_creates(su: Conn) -> None:
    add_events(su, ["2018-05-03", "2018-05-31 23:59:59", "2018-07-01"], entity_id="5")
    # A partition auditsql did not make, overlapping August 2018: those
    # events stay in the default partition.
    run(su, "CREATE TABLE audit.odd (LIKE audit.events)",
        "ALTER TABLE audit.events ATTACH PARTITION audit.odd"
        " FOR VALUES FROM ('2018-08-10 00:00+00') TO ('2018-08-20 00:00+00')")
    add_events(su, ["2018-08-01"], entity_id="6")
    for ahead in (0, 3, 6):
        with su.transaction(force_rollback=True):
            before = state(su)
            preview = su.execute("SELECT * FROM audit.maintain_preview(%s)", (ahead,)).fetchall()
            assert state(su) == before
            created = su.execute("SELECT * FROM audit.maintain(%s)", (ahead,)).fetchall()
            assert preview == created, ahead
            assert [r["partition"] for r in preview][:2] == ["events_2018_05", "events_2018_07"]
            assert "events_2018_08" not in [r["partition"] for r in preview]
    expect_error(su, "SELECT * FROM audit.maintain_preview(121)", sqlstate="22023")
    expect_error(su, "SELECT * FROM audit.maintain_preview(NULL)", sqlstate="22023")


def test_previews_run_in_a_read_only_transaction(months: Conn, installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SELECT * FROM audit.retention_preview(NULL, now(), true)").fetchall()
        conn.execute("SELECT * FROM audit.maintain_preview(6)").fetchall()
        conn.execute("SELECT * FROM audit.retention_change('financial')").fetchall()
        conn.execute("SELECT audit.normalize_entity_id('public.t', '[1,2]')").fetchall()
    assert partitions(months)[0] == "events_2019_12"
