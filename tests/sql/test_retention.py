"""Retention: the policy, partitions dropped exactly when due, legal holds,
partition maintenance, the events they record, and who may run them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import sql

from auditsql import Audit, checks, errors
from auditsql.partitions import partitions as partition_facts
from auditsql.installer import install
from auditsql.render import Settings
from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import (
    ADMIN,
    OWNER,
    READER,
    Conn,
    attach,
    column,
    connect,
    dbname,
    expect_error,
    ident,
    run,
    scalar,
)

T = "public.t"
RETENTION_ACTIONS = ("retention_applied", "retention_policy_set", "legal_hold_placed",
                     "legal_hold_released", "default_rows_moved")


def utc(text: str) -> datetime:
    """A UTC time from 'YYYY-MM-DD[ HH:MM:SS[.ffffff]]'."""
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(text)


def add_events(conn: Conn, times: Sequence[str], entity_id: str = "1",
               entity_type: str = T) -> list[int]:
    """Events at the given UTC times (written straight into the log, as a
    superuser may); returns their ids."""
    return column(
        conn,
        "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id, after)"
        " SELECT 'data', 'created', t, %s, %s, jsonb_build_object('at', t)"
        " FROM unnest(%s::timestamptz[]) AS t RETURNING id",
        (entity_type, entity_id, [utc(t) for t in times]),
    )


def partitions(conn: Conn) -> list[str]:
    """Names of the log's monthly partitions, oldest first."""
    return column(conn, "SELECT name FROM audit.event_partitions() WHERE NOT is_default")


def apply(conn: Conn, as_of: str | None = None) -> list[dict[str, Any]]:
    """apply_retention(as_of), its rows."""
    if as_of is None:
        return conn.execute("SELECT * FROM audit.apply_retention()").fetchall()
    return conn.execute("SELECT * FROM audit.apply_retention(%s)", (utc(as_of),)).fetchall()


def system_events(conn: Conn, action: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM audit.events WHERE action = %s ORDER BY id", (action,)).fetchall()


def ids(conn: Conn) -> set[int]:
    return set(column(conn, "SELECT id FROM audit.events"))


@pytest.fixture
def old_months(su: Conn) -> Conn:
    """Partitions for December 2019 to March 2020, each with events at its
    first and last microsecond, and a 3-year policy."""
    run(su, "SELECT audit.ensure_partitions('2019-12-01 00:00+00', 4)",
        "SELECT audit.set_retention('saas')")
    starts = [utc(m) for m in ("2019-12-01", "2020-01-01", "2020-02-01", "2020-03-01",
                                "2020-04-01")]
    for start, end in zip(starts, starts[1:]):
        last = end - timedelta(microseconds=1)
        add_events(su, [start.strftime("%Y-%m-%d %H:%M:%S"),
                        last.strftime("%Y-%m-%d %H:%M:%S.%f")])
    return su


# --------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------


POLICIES = [
    ("financial", "financial", "7 years"),
    ("medical", "medical", "5 years"),
    ("saas", "saas", "3 years"),
    (" Financial ", "financial", "7 years"),
    ("18 months", "custom", "1 year 6 mons"),
    ("400 days", "custom", "400 days"),
    ("P2Y", "custom", "2 years"),
]
BAD_POLICIES = [
    "forever", "", "   ", "-1 year", "0", "0 days", "1 year -13 months", "1000000 years",
    "7 years'); DROP TABLE canary; --", "financial; DROP TABLE canary", None,
]


def test_policies(su: Conn) -> None:
    su.execute("SET IntervalStyle = 'postgres'")
    for given, name, keep in POLICIES:
        # Some of these shorten the one before: said so explicitly.
        run(su, sql.SQL("SELECT audit.set_retention({}, p_shorten => true)").format(
            sql.Literal(given)))
        row = su.execute("SELECT policy, keep::text AS keep, set_by FROM audit.retention").fetchone()
        assert row == {"policy": name, "keep": keep, "set_by": "postgres"}, given


def test_bad_policies_are_refused_and_change_nothing(su: Conn) -> None:
    run(su, "CREATE TABLE canary ()", "SELECT audit.set_retention('medical')")
    before = su.execute("SELECT * FROM audit.retention").fetchall()
    count = scalar(su, "SELECT count(*) FROM audit.events")
    for bad in BAD_POLICIES:
        expect_error(su, "SELECT audit.set_retention(%s)", (bad,), sqlstate="22023",
                     contains="retention polic")
        assert su.execute("SELECT * FROM audit.retention").fetchall() == before, bad
    assert scalar(su, "SELECT count(*) FROM audit.events") == count
    assert scalar(su, "SELECT to_regclass('canary') IS NOT NULL")


def test_policy_changes_are_recorded_once_each(su: Conn) -> None:
    for policy in ("saas", "saas", "financial", "7 years", "84 months"):
        with su.transaction():
            su.execute("SELECT audit.set_actor('u-1', 'dpo@example.com', 'dpo')")
            su.execute("SELECT audit.set_retention(%s)", (policy,))
    recorded = system_events(su, "retention_policy_set")
    assert {e["actor_id"] for e in recorded} == {"u-1"}
    assert [e["after"]["policy"] for e in recorded] == ["saas", "financial", "custom"]
    assert recorded[0]["after"]["previous"] is None
    assert recorded[1]["after"]["previous"]["policy"] == "saas"
    assert recorded[2]["after"]["keep"] == "7 years"
    assert recorded[0]["entity_type"] == "audit.retention"


def test_policy_can_be_changed_but_not_removed(su: Conn) -> None:
    su.execute("SELECT audit.set_retention('saas')")
    for statement in ("DELETE FROM audit.retention", "TRUNCATE audit.retention"):
        expect_error(su, statement, sqlstate="42501", contains="not removed")
    su.execute("UPDATE audit.retention SET keep = '4 years'")  # by hand: still recorded
    assert system_events(su, "retention_policy_set")[-1]["after"]["keep"] == "4 years"


# --------------------------------------------------------------------------
# Partitions dropped exactly when due
# --------------------------------------------------------------------------


def test_nothing_is_due_before_the_boundary(old_months: Conn) -> None:
    # saas: 3 years. The December 2019 partition ends at 2020-01-01 00:00 UTC,
    # so it is due from 2023-01-01 00:00 UTC on, not a microsecond earlier.
    before = ids(old_months)
    assert apply(old_months, "2022-12-31 23:59:59.999999") == []
    assert ids(old_months) == before
    assert system_events(old_months, "retention_applied") == []


def test_a_partition_is_dropped_exactly_at_its_boundary(old_months: Conn) -> None:
    before = old_months.execute("SELECT id, occurred_at FROM audit.events").fetchall()
    removed = apply(old_months, "2023-01-01 00:00:00")
    assert [(r["partition"], r["rows_removed"], r["rows_kept"]) for r in removed] == [
        ("events_2019_12", 2, 0)]
    assert (removed[0]["range_from"], removed[0]["range_to"]) == (
        utc("2019-12-01"), utc("2020-01-01"))
    assert "events_2019_12" not in partitions(old_months)
    assert "events_2020_01" in partitions(old_months)
    after = ids(old_months)
    cutoff = utc("2020-01-01")
    for event in before:
        # Every event at or after the cutoff survives; only older ones went.
        assert (event["id"] in after) == (event["occurred_at"] >= cutoff)


BOUNDARIES = [
    ("saas", "2023-01-31 23:59:59.999999", ["events_2019_12"]),
    ("saas", "2023-02-01 00:00:00", ["events_2019_12", "events_2020_01"]),
    ("saas", "2023-02-28 23:59:59.999999", ["events_2019_12", "events_2020_01"]),
    ("saas", "2023-03-01 00:00:00", ["events_2019_12", "events_2020_01", "events_2020_02"]),
    ("18 months", "2021-08-31 23:59:59.999999", ["events_2019_12", "events_2020_01"]),
    ("18 months", "2021-09-01 00:00:00", ["events_2019_12", "events_2020_01", "events_2020_02"]),
    # 2020 is a leap year: 366 days before 2021-03-01 is 2020-02-29, before
    # 2021-03-02 it is 2020-03-01.
    ("366 days", "2021-03-01 23:59:59.999999", ["events_2019_12", "events_2020_01"]),
    ("366 days", "2021-03-02 00:00:00", ["events_2019_12", "events_2020_01", "events_2020_02"]),
    # A year before 2021-02-28 is 2020-02-28: February 2020 is not yet due.
    ("1 year", "2021-02-28 12:00:00", ["events_2019_12", "events_2020_01"]),
]


def test_policy_arithmetic_at_the_boundaries(old_months: Conn) -> None:
    # Month arithmetic in UTC, whatever the session's time zone.
    old_months.execute("SET TimeZone = 'Pacific/Kiritimati'")
    for policy, as_of, due in BOUNDARIES:
        with old_months.transaction(force_rollback=True):
            old_months.execute("SELECT audit.set_retention(%s, p_shorten => true)", (policy,))
            assert [r["partition"] for r in apply(old_months, as_of)] == due, (policy, as_of)


def test_as_of_may_not_be_in_the_future(old_months: Conn) -> None:
    before = partitions(old_months)
    for as_of in ("now() + interval '1 second'", "'infinity'", "NULL"):
        expect_error(old_months, f"SELECT audit.apply_retention({as_of})", sqlstate="22023",
                     contains="future")
    assert partitions(old_months) == before


def test_without_a_policy_nothing_is_removed(su: Conn) -> None:
    su.execute("SELECT audit.ensure_partitions('2001-01-01', 1)")
    add_events(su, ["2001-01-15"])
    expect_error(su, "SELECT audit.apply_retention()", sqlstate="55000",
                 contains="no retention policy")
    assert "events_2001_01" in partitions(su)


def test_the_system_event_states_what_was_removed(old_months: Conn) -> None:
    with old_months.transaction():
        old_months.execute("SELECT audit.set_actor('ops-1', 'ops@example.com', 'ops')")
        apply(old_months, "2023-02-01 00:00:00")
    [event] = system_events(old_months, "retention_applied")
    after = event["after"]
    assert (event["entity_type"], event["actor_id"]) == ("audit.events", "ops-1")
    assert (after["policy"], after["keep"]) == ("saas", "3 years")
    assert (after["as_of"], after["cutoff"]) == ("2023-02-01T00:00:00+00:00",
                                                 "2020-02-01T00:00:00+00:00")
    assert after["partitions"] == [
        {"partition": "events_2019_12", "from": "2019-12-01T00:00:00+00:00",
         "to": "2020-01-01T00:00:00+00:00", "rows_removed": 2, "rows_kept": 0},
        {"partition": "events_2020_01", "from": "2020-01-01T00:00:00+00:00",
         "to": "2020-02-01T00:00:00+00:00", "rows_removed": 2, "rows_kept": 0},
    ]
    assert (after["rows_removed"], after["rows_kept"]) == (4, 0)
    assert apply(old_months, "2023-02-01 00:00:00") == []  # nothing left to do, nothing recorded
    assert len(system_events(old_months, "retention_applied")) == 1


def test_the_default_partition_and_current_months_are_never_dropped(su: Conn) -> None:
    su.execute("SELECT audit.set_retention('1 day', p_under_a_year => true)")
    add_events(su, ["1999-06-01"])  # lands in the default partition
    current = partitions(su)
    assert apply(su) == []
    assert partitions(su) == current
    assert scalar(su, "SELECT count(*) FROM audit.events_default") == 1


# --------------------------------------------------------------------------
# Legal holds
# --------------------------------------------------------------------------


def test_held_events_survive_in_a_rebuilt_partition(old_months: Conn) -> None:
    held = add_events(old_months, ["2019-12-10", "2019-12-20"], entity_id="1001")
    add_events(old_months, ["2019-12-11"], entity_id="1002")
    images = old_months.execute(
        "SELECT * FROM audit.events WHERE id = ANY(%s) ORDER BY id", (held,)).fetchall()
    assert scalar(old_months, "SELECT audit.place_hold(%s, '1001', 'case 7')", (T,)) is True
    removed = apply(old_months, "2023-01-01")
    assert [(r["partition"], r["rows_removed"], r["rows_kept"]) for r in removed] == [
        ("events_2019_12", 3, 2)]
    assert "events_2019_12" in partitions(old_months)
    # The same events, same ids, found by the usual history query.
    assert old_months.execute(
        "SELECT * FROM audit.events WHERE entity_type = %s AND entity_id = '1001'"
        " AND occurred_at < '2020-01-01' ORDER BY id", (T,)).fetchall() == images
    assert scalar(old_months, "SELECT count(*) FROM audit.events_2019_12") == 2
    # Release: the next run removes them, and says so.
    old_months.execute("SELECT audit.release_hold(%s, '1001', 'case closed')", (T,))
    removed = apply(old_months, "2023-01-01")
    assert [(r["partition"], r["rows_removed"], r["rows_kept"]) for r in removed] == [
        ("events_2019_12", 2, 0)]
    assert "events_2019_12" not in partitions(old_months)


def test_a_partition_of_held_events_only_is_kept_as_is(su: Conn) -> None:
    su.execute("SELECT audit.set_retention('saas')")
    su.execute("SELECT audit.ensure_partitions('2015-03-01', 1)")
    add_events(su, ["2015-03-02", "2015-03-03"], entity_id="9")
    su.execute("SELECT audit.place_hold(%s, '9', 'audit of 2015')", (T,))
    oid = scalar(su, "SELECT 'audit.events_2015_03'::regclass::oid")
    assert apply(su) == []
    assert scalar(su, "SELECT 'audit.events_2015_03'::regclass::oid") == oid


def test_rebuilt_partitions_are_guarded_like_the_others(old_months: Conn, app_conn: Conn) -> None:
    add_events(old_months, ["2019-12-10"], entity_id="1001")
    old_months.execute("SELECT audit.place_hold(%s, '1001', 'case 7')", (T,))
    apply(old_months, "2023-01-01")
    assert_guarded(old_months, "audit.events_2019_12")


def assert_guarded(conn: Conn, table: str) -> None:
    """The table refuses changes, has both guard triggers always on, and
    nobody holds UPDATE, DELETE or TRUNCATE on it."""
    for statement in (f"UPDATE {table} SET action = 'x'", f"DELETE FROM {table}",
                      f"TRUNCATE {table}"):
        expect_error(conn, statement, sqlstate="42501", contains="append-only")
    guards = conn.execute(
        "SELECT tgname::text AS name, tgenabled::text AS state FROM pg_trigger"
        " WHERE tgrelid = %s::regclass AND tgname LIKE 'auditsql_guard%%' ORDER BY 1",
        (table,)).fetchall()
    assert guards == [{"name": "auditsql_guard_row", "state": "A"},
                      {"name": "auditsql_guard_statement", "state": "A"}]
    held = conn.execute(
        "SELECT a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
        " WHERE c.oid = %s::regclass AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')",
        (table,)).fetchall()
    assert held == []
    assert scalar(conn, "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass",
                  (table,)) == OWNER


def test_holds_are_recorded_and_cannot_vanish_unrecorded(su: Conn) -> None:
    run(su, "CREATE TABLE t (id int PRIMARY KEY)")
    attach(su, T)
    su.execute("INSERT INTO t VALUES (1)")
    for call, params in (("SELECT audit.place_hold(%s, '1', 'subpoena 12')", True),
                         ("SELECT audit.place_hold(%s, '1', 'another reason')", False),
                         ("SELECT audit.release_hold(%s, '1', 'settled')", "")):
        with su.transaction():
            su.execute("SELECT audit.set_actor('legal-1', 'legal@example.com', 'legal')")
            assert scalar(su, call, (T,)) == params
    placed = system_events(su, "legal_hold_placed")
    released = system_events(su, "legal_hold_released")
    assert [(e["entity_type"], e["entity_id"], e["actor_id"]) for e in placed + released] == [
        (T, "1", "legal-1"), (T, "1", "legal-1")]
    assert placed[0]["after"] == {"reason": "subpoena 12", "events": 1}
    assert released[0]["after"]["reason"] == "settled"
    assert released[0]["after"]["hold"]["reason"] == "subpoena 12"
    # By hand, a hold is still recorded; it cannot be edited or truncated away.
    su.execute("INSERT INTO audit.legal_holds (entity_type, entity_id, reason)"
               " VALUES (%s, '1', 'by hand')", (T,))
    for statement in ("UPDATE audit.legal_holds SET reason = 'x'", "TRUNCATE audit.legal_holds"):
        expect_error(su, statement, sqlstate="42501", contains="never changed")
    su.execute("DELETE FROM audit.legal_holds")
    assert len(system_events(su, "legal_hold_placed")) == 2
    assert system_events(su, "legal_hold_released")[-1]["after"]["reason"] is None


BAD_HOLDS = [
    (("public.nosuch", "1", "x"), "42P01", "no audited table"),
    (("t", "1", "x"), "42P01", "no audited table"),  # not qualified as in the log
    ((T, "1", ""), "22023", "reason"),
    ((T, "1", "   "), "22023", "reason"),
    ((T, "1", None), "22023", "reason"),
    ((T, "1", "x" * 1001), "22023", "reason"),
    ((T, "", "x"), "22023", "entity id"),
    ((T, None, "x"), "22023", "entity id"),
]


def test_bad_holds_are_refused_and_change_nothing(su: Conn) -> None:
    run(su, "CREATE TABLE t (id int PRIMARY KEY)")
    attach(su, T)
    count = scalar(su, "SELECT count(*) FROM audit.events")
    for args, sqlstate, needle in BAD_HOLDS:
        expect_error(su, "SELECT audit.place_hold(%s, %s, %s)", args, sqlstate=sqlstate,
                     contains=needle)
        assert scalar(su, "SELECT count(*) FROM audit.legal_holds") == 0, args
    assert scalar(su, "SELECT count(*) FROM audit.events") == count


def test_a_reason_is_data(su: Conn) -> None:
    reason = "x'); DROP TABLE canary; -- \\ \" $$ ünïcødé 🙂\n2nd line"
    run(su, "CREATE TABLE canary ()", "CREATE TABLE t (id int PRIMARY KEY)")
    attach(su, T)
    su.execute("SELECT audit.place_hold(%s, %s, %s, p_future => true)", (T, "1'; --", reason))
    assert su.execute("SELECT entity_id, reason FROM audit.legal_holds").fetchone() == {
        "entity_id": "1'; --", "reason": reason}
    assert system_events(su, "legal_hold_placed")[0]["after"]["reason"] == reason
    assert scalar(su, "SELECT to_regclass('canary') IS NOT NULL")


def test_releasing_what_is_not_held_is_refused(su: Conn) -> None:
    count = scalar(su, "SELECT count(*) FROM audit.events")
    expect_error(su, "SELECT audit.release_hold('public.t', '1')", sqlstate="42704",
                 contains="not under legal hold")
    assert scalar(su, "SELECT count(*) FROM audit.events") == count


def test_holds_cannot_change_while_retention_runs(old_months: Conn, installed_db: str) -> None:
    with connect(installed_db, autocommit=False) as ret:
        ret.execute("SELECT * FROM audit.apply_retention('2023-01-01')").fetchall()
        modes = column(old_months, "SELECT mode FROM pg_locks WHERE pid = %s"
                                   " AND relation = 'audit.legal_holds'::regclass",
                       (ret.info.backend_pid,))
        ret.rollback()
    assert "ShareLock" in modes  # conflicts with the inserts and deletes of holds


def test_policy_and_hold_events_name_what_they_replace(su: Conn) -> None:
    """docs/retention.md, Events about the log: `previous: {policy, keep,
    set_at, set_by}` and `hold: {reason, placed_at, placed_by}`."""
    su.execute("SELECT audit.set_retention('saas')")
    saas = su.execute("SELECT set_at, set_by FROM audit.retention").fetchone()
    su.execute("SELECT audit.set_retention('financial')")
    previous = system_events(su, "retention_policy_set")[-1]["after"]["previous"]
    assert {**previous, "set_at": datetime.fromisoformat(previous["set_at"])} == {
        "policy": "saas", "keep": "3 years", **(saas or {})}
    add_events(su, ["2019-12-10"], entity_id="5")
    su.execute("SELECT audit.place_hold(%s, '5', 'case 8')", (T,))
    placed = su.execute("SELECT placed_at, placed_by FROM audit.legal_holds").fetchone()
    su.execute("SELECT audit.release_hold(%s, '5', 'closed')", (T,))
    hold = system_events(su, "legal_hold_released")[-1]["after"]["hold"]
    assert {**hold, "placed_at": datetime.fromisoformat(hold["placed_at"])} == {
        "reason": "case 8", **(placed or {})}


# --------------------------------------------------------------------------
# Maintenance
# --------------------------------------------------------------------------


def months_from_now(conn: Conn, count: int) -> list[str]:
    return column(conn, "SELECT 'events_' || to_char((date_trunc('month', now() AT TIME ZONE"
                        " 'UTC') + make_interval(months => g)), 'YYYY_MM')"
                        " FROM generate_series(0, %s) AS g", (count - 1,))


def test_maintain_creates_partitions_ahead(su: Conn) -> None:
    created = su.execute("SELECT * FROM audit.maintain()").fetchall()
    expected = months_from_now(su, 4)
    assert set(expected) <= set(partitions(su))
    assert [r["partition"] for r in created] == [p for p in expected if p not in
                                                 months_from_now(su, 2)]
    assert su.execute("SELECT * FROM audit.maintain()").fetchall() == []
    assert [r["partition"] for r in su.execute("SELECT * FROM audit.maintain(6)")] == \
        months_from_now(su, 7)[4:]
    assert_guarded(su, f"audit.{expected[3]}")


def test_maintain_refuses_bad_months(su: Conn) -> None:
    before = partitions(su)
    for bad in ("-1", "121", "NULL"):
        expect_error(su, f"SELECT audit.maintain({bad})", sqlstate="22023",
                     contains="months_ahead")
    assert partitions(su) == before


def test_maintain_moves_rows_out_of_the_default_partition(su: Conn) -> None:
    moved = add_events(su, ["2018-05-03", "2018-05-31 23:59:59", "2018-07-01"], entity_id="5")
    images = su.execute("SELECT * FROM audit.events WHERE id = ANY(%s) ORDER BY id",
                        (moved,)).fetchall()
    assert scalar(su, "SELECT count(*) FROM audit.events_default") == 3
    rows = su.execute("SELECT * FROM audit.maintain(0)").fetchall()
    assert [(r["partition"], r["rows_moved"]) for r in rows] == [
        ("events_2018_05", 2), ("events_2018_07", 1)]
    assert scalar(su, "SELECT count(*) FROM audit.events_default") == 0
    assert su.execute("SELECT * FROM audit.events WHERE id = ANY(%s) ORDER BY id",
                      (moved,)).fetchall() == images
    assert scalar(su, "SELECT count(*) FROM audit.events_2018_05") == 2
    [event] = system_events(su, "default_rows_moved")
    assert event["after"]["rows"] == 3
    assert [p["partition"] for p in event["after"]["partitions"]] == [
        "events_2018_05", "events_2018_07"]
    # The guards on the default partition are back on, and nobody kept DELETE.
    assert_guarded(su, "audit.events_default")
    assert_guarded(su, "audit.events_2018_05")


def test_maintain_then_retention_removes_old_rows_from_the_default(su: Conn) -> None:
    su.execute("SELECT audit.set_retention('saas')")
    add_events(su, ["2010-01-05"])
    su.execute("SELECT * FROM audit.maintain()")
    assert [r["partition"] for r in apply(su)] == ["events_2010_01"]


def test_writers_to_the_current_month_never_wait_for_maintenance(
        su: Conn, installed_db: str) -> None:
    run(su, "CREATE TABLE t (id int PRIMARY KEY)")
    attach(su, T)
    add_events(su, ["2017-02-02"], entity_type="public.archive")  # a move from the default is due
    su.execute("SET lock_timeout = '2s'")
    with connect(installed_db, autocommit=False) as writer, \
            connect(installed_db, autocommit=False) as maint, \
            connect(installed_db) as other:
        writer.execute("INSERT INTO t VALUES (1)")  # open, holding its locks
        rows = maint.execute("SELECT * FROM audit.maintain()").fetchall()  # does not wait
        assert rows[0]["partition"] == "events_2017_02"
        # Maintenance still open, holding its locks: writes go on, and so do
        # reads of the current month (reads of the whole log, which include
        # the default partition, wait until maintenance commits).
        other.execute("SET lock_timeout = '500ms'")
        other.execute("INSERT INTO t VALUES (2)")
        month = su.execute("SELECT range_from, range_to FROM audit.event_partitions()"
                           " WHERE range_from <= now() AND range_to > now()").fetchone()
        assert month is not None
        assert scalar(other, "SELECT count(*) FROM audit.events WHERE entity_type = %s"
                             " AND action = 'created' AND occurred_at >= %s AND occurred_at < %s",
                      (T, month["range_from"], month["range_to"])) == 1
        maint.commit()
        writer.commit()
    assert scalar(su, "SELECT count(*) FROM audit.events WHERE entity_type = %s"
                      " AND action = 'created'", (T,)) == 2


def test_retention_gives_up_rather_than_queue_writers(old_months: Conn, installed_db: str) -> None:
    run(old_months, "CREATE TABLE t (id int PRIMARY KEY)")
    attach(old_months, T)
    before = partitions(old_months)
    with connect(installed_db, autocommit=False) as writer:
        writer.execute("INSERT INTO t VALUES (1)")  # a transaction left open on the log
        started = time.monotonic()
        expect_error(old_months, "SELECT audit.apply_retention('2023-01-01')", sqlstate="55P03")
        assert time.monotonic() - started < 10
        writer.commit()
    assert partitions(old_months) == before
    assert system_events(old_months, "retention_applied") == []


def test_maintenance_gives_up_rather_than_wait(su: Conn, installed_db: str) -> None:
    """maintain runs with lock_timeout = 2s: a long transaction reading the
    whole log makes it fail with lock_not_available, changing nothing."""
    add_events(su, ["2017-02-02"])  # in the default partition: a move is due
    before = partitions(su)
    su.execute("SET statement_timeout = '20s'")  # waiting without a lock_timeout ends otherwise
    with connect(installed_db, autocommit=False) as reader:
        reader.execute("SELECT count(*) FROM audit.events").fetchall()  # left open
        started = time.monotonic()
        expect_error(su, "SELECT * FROM audit.maintain()", sqlstate="55P03")
        assert time.monotonic() - started < 10
        reader.rollback()
    assert partitions(su) == before
    assert scalar(su, "SELECT count(*) FROM audit.events_default") == 1
    assert system_events(su, "default_rows_moved") == []


def test_listing_partitions_never_waits(old_months: Conn, installed_db: str) -> None:
    """event_partitions() reads the catalog only: it answers while
    maintenance holds the default partition, and retention the log, in
    ACCESS EXCLUSIVE."""
    add_events(old_months, ["2017-02-02"])  # in the default partition
    old_months.execute("SET lock_timeout = '1s'")
    before = partitions(old_months)
    for call, table in (("SELECT * FROM audit.maintain()", "audit.events_default"),
                        ("SELECT * FROM audit.apply_retention('2023-01-01')", "audit.events")):
        with connect(installed_db, autocommit=False) as other:
            assert other.execute(call).fetchall() != []  # left open, holding its locks
            assert "AccessExclusiveLock" in column(
                old_months, "SELECT mode FROM pg_locks WHERE pid = %s AND relation = %s::regclass",
                (other.info.backend_pid, table))
            assert partitions(old_months) == before
            other.rollback()


# --------------------------------------------------------------------------
# Who may do what
# --------------------------------------------------------------------------

# Only audit administrators (the admin role) may run these; the write
# functions run as the owner role and check the admin role themselves.
ADMIN_ONLY = (
    "SELECT audit.apply_retention()",
    "SELECT audit.retention_preview()",
    "SELECT audit.retention_preview('1 year')",
    "SELECT audit.maintain()",
    "SELECT audit.maintain_preview()",
    "SELECT audit.set_retention('saas')",
    "SELECT audit.retention_change('saas')",
    "SELECT audit.retention_due('1 year', now(), false, true)",
    "SELECT audit.place_hold('public.t', '1', 'x')",
    "SELECT audit.release_hold('public.t', '1')",
    "SELECT audit.lock_log('audit.events', 'SHARE')",
    "SELECT audit.create_partition('events_2000_01', '2000-01-01', '2000-02-01')",
    "SELECT audit.record_system_event('retention_applied', NULL, NULL, NULL)",
    "SELECT audit.retention_interval('saas')",
)


@pytest.fixture
def reader_conn(pg: Server, installed_db: str, su: Conn, make_role: MakeRole) -> Iterator[Conn]:
    analyst = make_role()
    su.execute(sql.SQL("GRANT {} TO {}").format(ident(READER), ident(analyst)))
    with connect(pg.dsn(dbname(installed_db), user=analyst)) as conn:
        yield conn


def test_no_role_but_the_admin_can_remove_events(old_months: Conn, app_conn: Conn,
                                                 reader_conn: Conn) -> None:
    before = ids(old_months)
    expect_error(app_conn, "SELECT audit.normalize_entity_id('public.t', '1')", sqlstate="42501")
    assert scalar(reader_conn, "SELECT audit.normalize_entity_id('public.t', '1')") == "1"
    for conn in (app_conn, reader_conn):
        for call in ADMIN_ONLY:
            expect_error(conn, call, sqlstate="42501")
        for statement in ("DROP TABLE audit.events_2019_12",
                          "ALTER TABLE audit.events DETACH PARTITION audit.events_2019_12",
                          "DELETE FROM audit.events_2019_12",
                          "TRUNCATE audit.events_2019_12",
                          "DELETE FROM audit.legal_holds",
                          "UPDATE audit.retention SET keep = '1 day'"):
            expect_error(conn, statement, sqlstate="42501")
    assert ids(old_months) == before
    assert "events_2019_12" in partitions(old_months)


def test_a_member_of_the_admin_role_can(pg: Server, installed_db: str, old_months: Conn,
                                        make_role: MakeRole) -> None:
    """An audit administrator runs retention without any right over the log
    of its own: it is no member of the owner role."""
    admin = make_role()
    old_months.execute(sql.SQL("GRANT {} TO {}").format(ident(ADMIN), ident(admin)))
    with connect(pg.dsn(dbname(installed_db), user=admin)) as conn:
        conn.execute("SELECT audit.set_retention('saas')")
        assert [r["partition"] for r in apply(conn, "2023-01-01")] == ["events_2019_12"]
        conn.execute("SELECT * FROM audit.maintain()")
        [event] = system_events(old_months, "retention_applied")
        assert event["db_user"] == admin
        expect_error(conn, "DELETE FROM audit.events", sqlstate="42501")
        expect_error(conn, "INSERT INTO audit.events (category, action) VALUES ('data', 'x')",
                     sqlstate="42501")
    assert scalar(old_months, "SELECT pg_has_role(%s, %s, 'MEMBER')", (admin, OWNER)) is False


def test_the_reader_sees_policy_holds_and_partitions(old_months: Conn, reader_conn: Conn) -> None:
    add_events(old_months, ["2019-12-10"], entity_id="3")
    old_months.execute("SELECT audit.place_hold(%s, '3', 'r')", (T,))
    assert scalar(reader_conn, "SELECT policy FROM audit.retention") == "saas"
    assert scalar(reader_conn, "SELECT count(*) FROM audit.legal_holds") == 1
    assert "events_2019_12" in partitions(reader_conn)
    assert scalar(reader_conn, "SELECT count(*) FROM audit.events_default") == 0


# --------------------------------------------------------------------------
# Health facts (for `auditsql verify`)
# --------------------------------------------------------------------------


def retention_checks(dsn: str) -> dict[str, checks.Result]:
    """The retention checks of verify, by id."""
    with Audit(dsn) as audit:
        return {r.id: r for r in audit.verify().results if r.id.startswith("retention.")}


def test_retention_checks_of_a_fresh_install(pg: Server, installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn, conn.cursor() as cur:
        parts = partition_facts(cur, "audit")
    assert parts.current_month_covered and parts.months_ahead == 1
    assert parts.default_partition_empty
    found = retention_checks(installed_db)
    assert list(found) == ["retention.policy_set", "retention.partitions_ahead",
                           "retention.default_partition_empty", "retention.job_scheduled"]
    assert found["retention.policy_set"].status == "warn"
    assert found["retention.partitions_ahead"].status == "pass"
    assert found["retention.default_partition_empty"].status == "pass"
    available = scalar_setting(installed_db, "cron.database_name") is not None
    job = found["retention.job_scheduled"]
    if not available:
        assert job.status == "pass" and "not available" in job.message
    else:  # pg_cron is there and no job is scheduled (or, elsewhere, readable)
        assert job.status == "warn" and job.hint


def test_retention_checks_follow_the_facts(su: Conn, installed_db: str) -> None:
    su.execute("SELECT audit.set_retention('medical')")
    su.execute("SELECT * FROM audit.maintain()")
    with psycopg.connect(installed_db) as conn, conn.cursor() as cur:
        parts = partition_facts(cur, "audit")
    assert parts.months_ahead == 3
    assert checks.partitions_ahead_verdict(parts, min_months_ahead=3).status == "pass"
    assert checks.partitions_ahead_verdict(parts, min_months_ahead=4).status == "fail"
    found = retention_checks(installed_db)
    assert found["retention.policy_set"].status == "pass"
    assert found["retention.policy_set"].message == "medical (5 years)"
    add_events(su, ["1990-01-01"])
    assert retention_checks(installed_db)["retention.default_partition_empty"].status == "fail"
    current = months_from_now(su, 1)[0]
    # Without the current month's partition nothing is ahead either.
    su.execute(f"DROP TABLE audit.{current}")
    with psycopg.connect(installed_db) as conn, conn.cursor() as cur:
        parts = partition_facts(cur, "audit")
    assert (parts.current_month_covered, parts.months_ahead) == (False, 0)
    assert retention_checks(installed_db)["retention.partitions_ahead"].status == "fail"


def test_retention_status_needs_an_install(db: str) -> None:
    with Audit(db) as audit, pytest.raises(errors.NotInstalled):
        audit.retention_status()


def scalar_setting(dsn: str, name: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
    return row[0] if row and row[0] else None




def bound_checks(conn: Conn) -> list[str]:
    return column(conn, "SELECT k.conname FROM pg_constraint AS k"
                        " JOIN pg_inherits AS i ON i.inhrelid = k.conrelid"
                        " WHERE i.inhparent = 'audit.events'::regclass AND k.contype = 'c'"
                        " ORDER BY 1")


def test_attached_partitions_keep_no_bound_check(su: Conn, installed_db: str) -> None:
    """A partition's CHECK constraint only spares ATTACH PARTITION a scan:
    once attached, it is dropped (the bound says the same, and the
    constraint would cost every insert). Install drops it from partitions
    an earlier version attached."""
    add_events(su, ["2018-05-03"])
    run(su, "SELECT audit.ensure_partitions('2019-12-01 00:00+00', 2)",
        "SELECT audit.maintain(0)")
    assert {"events_2018_05", "events_2019_12", "events_2020_01"} <= set(partitions(su))
    assert bound_checks(su) == []
    run(su, "ALTER TABLE audit.events_2019_12 ADD CONSTRAINT events_2019_12_bound"
            " CHECK (occurred_at >= '2019-12-01 00:00+00' AND occurred_at < '2020-01-01 00:00+00')")
    assert bound_checks(su) == ["events_2019_12_bound"]
    with psycopg.connect(installed_db) as conn:
        install(conn, Settings())
    assert bound_checks(su) == []
