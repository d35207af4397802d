"""Installing again and upgrading keep the log: every event stays as it was
(its id, its contents, the partition it is in), every partition stays, and
capture goes on in every mode."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from auditsql import installer
from auditsql.render import Settings
from tests.sql.sqltools import Conn, attach, brief, events, run, scalar

# (table, capture mode): row and statement capture, and a partitioned table
# with a partition made after attach.
TABLES = (("public.plain", "row"), ("public.bulk", "statement"), ("public.parted", "row"))
PAST_MONTHS = ("2015-03-10 12:00:00+00", "2015-04-20 08:30:00+00")
BEFORE_ANY_PARTITION = "1999-12-31 23:59:59+00"  # lands in the default partition


def write_round(conn: Conn, key: int) -> None:
    """Insert, update, delete and truncate in every table, as an actor."""
    with conn.transaction():
        conn.execute("SELECT audit.set_actor('u-1', 'ada@example.com', 'member')")
        for table, _ in TABLES:
            run(conn,
                f"INSERT INTO {table} VALUES ({key}, 'a'), ({key + 1}, 'b')",
                f"UPDATE {table} SET v = 'c' WHERE id = {key}",
                f"DELETE FROM {table} WHERE id = {key + 1}",
                f"TRUNCATE {table}")


def round_events(key: int) -> list[tuple[str, str | None]]:
    """What write_round(key) records for each table, in order."""
    return [("created", str(key)), ("created", str(key + 1)), ("updated", str(key)),
            ("deleted", str(key + 1)), ("truncated", str(key))]


@pytest.fixture
def logged(su: Conn) -> Conn:
    """Audited tables with two rounds of writes (the second, for the
    partitioned table, into a partition made after attach), events in
    monthly partitions of 2015 and in the default partition, and an
    application event."""
    run(su,
        "CREATE TABLE public.plain (id int PRIMARY KEY, v text)",
        "CREATE TABLE public.bulk (id int PRIMARY KEY, v text)",
        "CREATE TABLE public.parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)",
        "CREATE TABLE public.parted_low PARTITION OF public.parted FOR VALUES FROM (0) TO (50)")
    for table, capture in TABLES:
        attach(su, table, capture=capture)
    su.execute("CREATE TABLE public.parted_high PARTITION OF public.parted"
               " FOR VALUES FROM (50) TO (MAXVALUE)")
    write_round(su, 1)
    write_round(su, 60)
    su.execute("SELECT audit.ensure_partitions('2015-03-01', 2)")
    su.execute(
        "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id, after)"
        " SELECT 'data', 'created', t, 'public.archived', '0', jsonb_build_object('at', t)"
        " FROM unnest(%s::timestamptz[]) AS t", ([*PAST_MONTHS, BEFORE_ANY_PARTITION],))
    su.execute("SELECT audit.log_event('login', 'user', '42', '{\"method\": \"password\"}')")
    return su


def log_state(conn: Conn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every event, whole and with the partition holding it, and every
    partition with its bounds."""
    rows = conn.execute("SELECT id, tableoid::regclass::text AS partition, to_jsonb(e) AS event"
                        " FROM audit.events AS e ORDER BY id").fetchall()
    partitions = conn.execute("SELECT partition::text, name, range_from, range_to, is_default"
                              " FROM audit.event_partitions()").fetchall()
    return rows, partitions


def assert_kept(conn: Conn, before: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    """The events of ``before`` are all there, unchanged and where they were,
    and so are its partitions; later events come after them."""
    rows, partitions = log_state(conn)
    kept, since = before
    assert rows[:len(kept)] == kept
    assert all(r["id"] > kept[-1]["id"] for r in rows[len(kept):])
    assert [p for p in partitions if p in since] == since, "a partition is gone or changed"
    assert {r["partition"] for r in kept} >= {
        "audit.events_2015_03", "audit.events_2015_04", "audit.events_default"}


def assert_capturing(conn: Conn, since: int) -> None:
    """A new round of writes is recorded in full, for every table."""
    write_round(conn, 7)
    for table, _ in TABLES:
        new = [e for e in events(conn, table) if e["id"] > since]
        assert brief(new) == round_events(7), table
        assert {e["actor_id"] for e in new} == {"u-1"}


def last_id(conn: Conn) -> int:
    return int(scalar(conn, "SELECT max(id) FROM audit.events"))


def test_the_fixture_logs_what_it_says(logged: Conn) -> None:
    for table, _ in TABLES:
        assert brief(events(logged, table)) == round_events(1) + round_events(60)


def test_install_again_keeps_every_event_and_goes_on_capturing(
        installed_db: str, logged: Conn) -> None:
    before = log_state(logged)
    with psycopg.connect(installed_db) as conn:
        installer.install(conn, Settings())
    assert_kept(logged, before)
    assert last_id(logged) == before[0][-1]["id"], "installing again records nothing"
    assert_capturing(logged, last_id(logged))


def test_upgrade_keeps_every_event_and_goes_on_capturing(
        installed_db: str, logged: Conn) -> None:
    """An upgrade from an older version (recorded as the previous release:
    its upgrade steps allow for what they change being there already)
    attaches again the tables whose capture triggers are not intact (one
    disabled by hand; a partition made after attach got its TRUNCATE
    trigger from the event triggers already): the events stay all the
    same."""
    run(logged,
        "INSERT INTO audit.installation (version, settings) SELECT '0.1.0', settings"
        " FROM audit.installation ORDER BY installed_at DESC LIMIT 1",
        "ALTER TABLE public.bulk DISABLE TRIGGER auditsql_capture_insert")
    before = log_state(logged)
    with psycopg.connect(installed_db) as conn:
        done = installer.upgrade(conn, "audit")
    assert (done.from_version, [r.table for r in done.reattached]) == ("0.1.0", ["public.bulk"])
    assert_kept(logged, before)
    assert last_id(logged) == before[0][-1]["id"], "upgrading records nothing"
    assert_capturing(logged, last_id(logged))
