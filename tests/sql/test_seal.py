"""Sealing and chain verification (docs/integrity.md): every kind of
change a superuser can make to sealed events, found at its block."""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from auditsql.installer import install
from auditsql.render import Settings
from tests.harness.databases import unique_name
from tests.harness.server import Server
from tests.sql.sqltools import Conn, connect, expect_error, quiet_ddl, run, scalar, seal


def log(conn: Conn, n: int, action: str = "login") -> None:
    run(conn, f"SELECT audit.log_event('{action}', 'user', g::text) FROM generate_series(1, {n}) AS g")


def findings(conn: Conn) -> list[tuple[int, str, list[int] | None]]:
    return [(r["block"], r["kind"], r["ids"]) for r in
            conn.execute("SELECT * FROM audit.verify_chain() ORDER BY 1, 2").fetchall()]


def partition_of(conn: Conn, event_id: int) -> str:
    return str(scalar(conn, "SELECT tableoid::regclass::text FROM audit.events WHERE id = %s",
                      (event_id,)))


def tamper(conn: Conn, event_id: int, statement: str) -> None:
    """Run `statement` with the guards of the partition holding the event lifted."""
    part = partition_of(conn, event_id)
    quiet_ddl(conn, "ALTER TABLE audit.events DISABLE TRIGGER auditsql_guard_statement,"
                    " DISABLE TRIGGER auditsql_guard_row",
              f"ALTER TABLE {part} DISABLE TRIGGER auditsql_guard_statement",
              statement,
              f"ALTER TABLE {part} ENABLE ALWAYS TRIGGER auditsql_guard_statement",
              "ALTER TABLE audit.events ENABLE ALWAYS TRIGGER auditsql_guard_statement,"
              " ENABLE ALWAYS TRIGGER auditsql_guard_row")


@pytest.fixture
def sealed(su: Conn) -> Iterator[Conn]:
    """Thirty events sealed in blocks of ten."""
    log(su, 30)
    seal(su, 10)
    yield su


def test_seal_covers_every_committed_event_once(su: Conn) -> None:
    log(su, 25)
    blocks, events, sealed_to = seal(su, 10)
    total = scalar(su, "SELECT count(*) FROM audit.events")
    assert (blocks, events) == (3, total)
    assert sealed_to == scalar(su, "SELECT max(id) FROM audit.events")
    assert seal(su, 10) == (0, 0, sealed_to)
    assert findings(su) == []
    ids = scalar(su, "SELECT range_agg(r)::text FROM audit.seal_blocks, unnest(ids) AS r")
    assert ids == f"{{[1,{sealed_to + 1})}}"


def log_around_a_rollback(conn: Conn, after: int = 3) -> None:
    """Three events, two rolled back, then *after* more: a gap in the ids
    that no deletion made."""
    log(conn, 3)
    with pytest.raises(RuntimeError):
        with conn.transaction():
            log(conn, 2)
            raise RuntimeError
    log(conn, after)


def sealed_with_a_rolled_back_gap(conn: Conn) -> None:
    log_around_a_rollback(conn)
    seal(conn)


def test_a_rollback_leaves_a_gap_that_is_not_a_deletion(su: Conn) -> None:
    sealed_with_a_rolled_back_gap(su)
    assert findings(su) == []
    assert scalar(su, "SELECT count(*) FROM unnest((SELECT ids FROM audit.seal_blocks WHERE block = 1))") == 2


def test_a_block_covers_only_the_ids_it_holds_when_one_was_forged_twice(su: Conn) -> None:
    """A block of as many events as the ids from its first to its last is
    one run, unless an id was written twice (forged before sealing, the
    sequence bypassed): the block then still covers the ids it holds, and
    not the one the duplicate stands in for."""
    log(su, 5)
    top = scalar(su, "SELECT max(id) FROM audit.events")
    su.execute("SELECT setval('audit.events_id_seq', %s)", (top + 2,))
    su.execute("INSERT INTO audit.events (id, category, action) VALUES (%s, 'app', 'x'), (%s, 'app', 'x')",
               (top + 2, top + 2))
    assert seal(su) == (1, top + 2, top + 2)
    assert scalar(su, "SELECT ids::text FROM audit.seal_blocks") == f"{{[1,{top + 1}),[{top + 2},{top + 3})}}"
    assert (1, "inserted", [top + 2]) in findings(su)


def test_an_edited_column_is_found_at_its_block(sealed: Conn) -> None:
    tamper(sealed, 15, "UPDATE audit.events SET actor_email = 'x@example.com' WHERE id = 15")
    assert findings(sealed) == [(2, "edited", [15])]


def test_an_edited_image_is_found(sealed: Conn) -> None:
    tamper(sealed, 3, """UPDATE audit.events SET after = '{"a": 1}' WHERE id = 3""")
    assert findings(sealed) == [(1, "edited", [3])]


def test_a_deleted_event_is_found(sealed: Conn) -> None:
    tamper(sealed, 22, "DELETE FROM audit.events WHERE id = 22")
    assert findings(sealed) == [(3, "deleted", [22])]


def test_a_forged_event_in_a_sealed_gap_is_found(su: Conn) -> None:
    sealed_with_a_rolled_back_gap(su)
    gap = scalar(su, "SELECT min(g) FROM generate_series(1, 8) AS g"
                     " WHERE NOT EXISTS (SELECT FROM audit.events WHERE id = g)")
    su.execute("INSERT INTO audit.events (id, category, action) VALUES (%s, 'app', 'forged')", (gap,))
    assert findings(su) == [(1, "inserted", [gap])]


def test_a_forged_copy_of_a_sealed_id_is_found(sealed: Conn) -> None:
    sealed.execute("INSERT INTO audit.events (id, category, action) VALUES (12, 'app', 'forged')")
    assert findings(sealed) == [(2, "inserted", [12])]


def test_two_swapped_events_are_found_reordered(sealed: Conn) -> None:
    tamper(sealed, 5, "UPDATE audit.events SET id = CASE id WHEN 5 THEN 6 ELSE 5 END WHERE id IN (5, 6)")
    assert findings(sealed) == [(1, "reordered", [5, 6])]


def test_an_altered_block_is_found(sealed: Conn) -> None:
    quiet_ddl(sealed, "ALTER TABLE audit.seal_blocks DISABLE TRIGGER auditsql_guard_statement",
              "UPDATE audit.seal_blocks SET last_at = last_at + interval '1 day' WHERE block = 2",
              "ALTER TABLE audit.seal_blocks ENABLE ALWAYS TRIGGER auditsql_guard_statement")
    assert findings(sealed) == [(2, "altered", None)]


def lift_chain_guards(conn: Conn, *statements: str) -> None:
    tables = ("audit.seal_blocks", "audit.seal_head")
    quiet_ddl(conn, *[f"ALTER TABLE {t} DISABLE TRIGGER auditsql_guard_statement" for t in tables],
              *statements,
              *[f"ALTER TABLE {t} ENABLE ALWAYS TRIGGER auditsql_guard_statement" for t in tables])


@pytest.mark.parametrize(("gone", "expected"), [
    # The block after the gap no longer follows the one before it.
    ([2], [(2, "truncated", list(range(11, 21))), (3, "altered", None)]),
    ([1], [(1, "truncated", list(range(1, 11))), (2, "altered", None)]),
    # The head still names the last block.
    ([3], [(3, "truncated", list(range(21, 31)))]),
    ([2, 3], [(2, "truncated", list(range(11, 31)))]),
], ids=["middle", "first", "last", "last-two"])
def test_a_removed_block_is_found_truncated_with_its_events(
        sealed: Conn, gone: list[int], expected: list[tuple[int, str, list[int] | None]]) -> None:
    """A block deleted from the chain is reported where it was, with the
    events no block covers any more, not as events added to the block
    before it."""
    lift_chain_guards(sealed, f"DELETE FROM audit.seal_blocks WHERE block IN ({', '.join(map(str, gone))})")
    assert findings(sealed) == expected


def test_a_removed_block_with_its_events_is_found_truncated(sealed: Conn) -> None:
    lift_chain_guards(sealed, "DELETE FROM audit.seal_blocks WHERE block = 2")
    tamper(sealed, 15, "DELETE FROM audit.events WHERE id BETWEEN 11 AND 20")
    assert findings(sealed) == [(2, "truncated", None), (3, "altered", None)]


def test_an_event_added_beside_a_removed_block_is_still_inserted(su: Conn) -> None:
    """Ids of a rolled-back gap inside a block stay that block's, whatever
    happened to the block after it."""
    sealed_with_a_rolled_back_gap(su)
    log(su, 10)
    seal(su, 10)
    lift_chain_guards(su, "DELETE FROM audit.seal_blocks WHERE block = 2")
    su.execute("INSERT INTO audit.events (id, category, action) VALUES (4, 'app', 'forged')")
    found = findings(su)
    assert (1, "inserted", [4]) in found
    assert [k for b, k, _ in found if b == 2] == ["truncated"]


def test_an_altered_head_is_found(sealed: Conn) -> None:
    lift_chain_guards(sealed, "UPDATE audit.seal_head SET hash = sha256(hash)")
    assert findings(sealed) == [(3, "altered", None)]
    lift_chain_guards(sealed, "UPDATE audit.seal_head SET block = 2")
    assert findings(sealed) == [(2, "altered", None)]


def unseal_everything(conn: Conn) -> None:
    """Remove the whole chain, guards lifted: the next seal() rebuilds it from scratch."""
    lift_chain_guards(conn, "DELETE FROM audit.seal_blocks", "DELETE FROM audit.seal_head",
                      "INSERT INTO audit.seal_head DEFAULT VALUES")


def test_resealing_from_scratch_is_consistent_without_a_digest(sealed: Conn) -> None:
    tamper(sealed, 15, "UPDATE audit.events SET action = 'logout' WHERE id = 15")
    unseal_everything(sealed)
    seal(sealed, 10)
    # Only a digest kept elsewhere tells (tests/cli/test_integrity.py).
    assert findings(sealed) == []


def test_the_chain_tables_refuse_changes(sealed: Conn) -> None:
    for statement in ("UPDATE audit.seal_blocks SET events = events",
                      "DELETE FROM audit.seal_blocks",
                      "TRUNCATE audit.seal_blocks",
                      "DELETE FROM audit.seal_head",
                      "TRUNCATE audit.seal_erasures",
                      "DELETE FROM audit.seal_retired"):
        expect_error(sealed, statement, sqlstate="42501", contains="append-only")


def test_the_block_size_is_checked(su: Conn) -> None:
    expect_error(su, "SELECT audit.seal(0)", sqlstate="22023", contains="block size")


T = "public.orders"


def old_events(conn: Conn, months: list[str], entity_id: str = "1") -> None:
    """Two events in each month (written straight into the log, as a
    superuser may), with partitions for them and a 3-year policy."""
    run(conn, "SELECT audit.ensure_partitions('2019-12-01 00:00+00', 4)",
        "SELECT audit.set_retention('saas')")
    for month in months:
        conn.execute(
            "INSERT INTO audit.events (category, action, occurred_at, entity_type, entity_id, after)"
            " SELECT 'data', 'created', t, %s, %s, jsonb_build_object('at', t)"
            " FROM unnest(ARRAY[%s::timestamptz, %s::timestamptz + interval '10 days']) AS t",
            (T, entity_id, f"{month}-01 00:00+00", f"{month}-01 00:00+00"))


def test_blocks_never_span_partitions(su: Conn) -> None:
    old_events(su, ["2019-12", "2020-01", "2020-02"])
    log(su, 2)
    seal(su)
    spans = su.execute("SELECT partition, events FROM audit.seal_blocks"
                       " WHERE first_at < '2021-01-01' ORDER BY block").fetchall()
    assert [(r["partition"], r["events"]) for r in spans] == [
        ("audit.events_2019_12", 2), ("audit.events_2020_01", 2), ("audit.events_2020_02", 2)]


def test_each_block_row_describes_the_events_it_covers(su: Conn) -> None:
    """events, first_at, last_at and partition of docs/integrity.md#sealing,
    over events whose times do not follow their ids, across partitions and
    a rolled-back gap."""
    su.execute("INSERT INTO audit.events (category, action, occurred_at)"
               " SELECT 'app', 'x', timestamptz '2031-01-20 00:00+00' - g * interval '1 hour'"
               " FROM generate_series(1, 6) AS g")
    log_around_a_rollback(su, after=4)
    seal(su, 4)
    blocks = su.execute(
        "SELECT b.block, b.events, b.first_at, b.last_at, b.partition, b.sealed_at,"
        " (SELECT sum(upper(r) - lower(r)) FROM unnest(b.ids) AS r) AS ids,"
        " (SELECT count(*) FROM audit.events AS e WHERE e.id <@ b.ids) AS n,"
        " (SELECT min(e.occurred_at) FROM audit.events AS e WHERE e.id <@ b.ids) AS lo,"
        " (SELECT max(e.occurred_at) FROM audit.events AS e WHERE e.id <@ b.ids) AS hi,"
        " (SELECT array_agg(DISTINCT e.tableoid::regclass::text) FROM audit.events AS e"
        "  WHERE e.id <@ b.ids) AS parts"
        " FROM audit.seal_blocks AS b ORDER BY b.block").fetchall()
    assert len(blocks) >= 4
    for b in blocks:
        assert b["events"] == b["ids"] == b["n"], b
        assert (b["first_at"], b["last_at"]) == (b["lo"], b["hi"]), b
        assert b["parts"] == [b["partition"]], b
        assert b["sealed_at"] is not None, b
    assert any(b["first_at"] < b["last_at"] for b in blocks)


def test_retention_leaves_the_chain_verifiable(su: Conn) -> None:
    old_events(su, ["2019-12", "2020-01", "2020-02"])
    log(su, 3)
    seal(su)
    head = su.execute("SELECT block, hash FROM audit.seal_head").fetchone()
    removed = su.execute("SELECT * FROM audit.apply_retention('2023-02-01')").fetchall()
    assert [r["partition"] for r in removed] == ["events_2019_12", "events_2020_01"]
    retired = su.execute("SELECT partition, last_block, last_hash FROM audit.seal_retired"
                         " ORDER BY range_from").fetchall()
    assert [(r["partition"], r["last_block"], r["last_hash"]) for r in retired] == [
        ("events_2019_12", head["block"], head["hash"]),
        ("events_2020_01", head["block"], head["hash"])]
    seal(su)  # the retention_applied event
    assert findings(su) == []


def drop_by_hand(conn: Conn, partition: str) -> tuple[int, str, list[int]]:
    """Drop a partition outside retention, guards lifted; the finding that
    deletion is (its one block's ids)."""
    quiet_ddl(conn, f"ALTER TABLE audit.events DETACH PARTITION audit.{partition}",
              f"DROP TABLE audit.{partition}")
    gone = conn.execute("SELECT block, ids::text FROM audit.seal_blocks WHERE partition = %s",
                        (f"audit.{partition}",)).fetchone()
    first, last = (int(x) for x in gone["ids"].strip("{[)}").split(","))
    return gone["block"], "deleted", list(range(first, last))


def test_a_partition_dropped_outside_retention_is_a_deletion(su: Conn) -> None:
    old_events(su, ["2019-12", "2020-01"])
    seal(su)
    deleted = drop_by_hand(su, "events_2019_12")
    assert findings(su) == [deleted]


def chain(conn: Conn) -> list[tuple[int, bytes]]:
    return [(r["block"], bytes(r["hash"]))
            for r in conn.execute("SELECT block, hash FROM audit.seal_blocks ORDER BY block")]


def test_retention_removes_no_block(su: Conn) -> None:
    old_events(su, ["2019-12", "2020-01", "2020-02"])
    seal(su, 1)
    before = chain(su)
    assert len(su.execute("SELECT * FROM audit.apply_retention('2023-02-01')").fetchall()) == 2
    assert chain(su) == before


def test_events_gone_outside_the_range_retention_recorded_are_deletions(su: Conn) -> None:
    old_events(su, ["2019-12", "2020-01", "2020-02"])
    seal(su)
    removed = su.execute("SELECT * FROM audit.apply_retention('2023-01-01')").fetchall()
    assert [r["partition"] for r in removed] == ["events_2019_12"]
    assert findings(su) == []
    deleted = drop_by_hand(su, "events_2020_02")
    assert findings(su) == [deleted]


def test_held_events_stay_verifiable_after_retention(su: Conn) -> None:
    old_events(su, ["2019-12"], entity_id="1001")
    old_events(su, ["2019-12"], entity_id="1002")
    seal(su)
    su.execute("SELECT audit.place_hold(%s, '1001', 'case 7')", (T,))
    removed = su.execute("SELECT * FROM audit.apply_retention('2023-02-01')").fetchall()
    assert [(r["rows_removed"], r["rows_kept"]) for r in removed if r["rows_kept"]] == [(2, 2)]
    assert findings(su) == []
    held = scalar(su, "SELECT min(id) FROM audit.events WHERE entity_id = '1001'")
    block = scalar(su, "SELECT block FROM audit.seal_blocks WHERE ids @> %s::bigint", (held,))
    tamper(su, held, f"UPDATE audit.events SET actor_id = 'x' WHERE id = {held}")
    assert findings(su) == [(block, "edited", [held])]


def test_erasure_keeps_the_chain_consistent(su: Conn) -> None:
    run(su, "CREATE TABLE public.orders (id int PRIMARY KEY, email text)",
        "SELECT audit.attach('public.orders')",
        "INSERT INTO public.orders VALUES (1, 'a@example.com'), (2, 'b@example.com')",
        "UPDATE public.orders SET email = 'c@example.com' WHERE id = 1")
    seal(su)
    before = su.execute("SELECT block, hash FROM audit.seal_head").fetchone()
    assert scalar(su, "SELECT audit.erase('public.orders', '1', NULL, 'asked')") == 2
    # Erased before sealing, and erased a second time: the first digests stay.
    su.execute("INSERT INTO public.orders VALUES (3, 'd@example.com')")
    assert scalar(su, "SELECT audit.erase('public.orders', '3', ARRAY['email'], 'asked')") == 1
    assert scalar(su, "SELECT audit.erase('public.orders', '1', ARRAY['email'], 'again')") == 0
    seal(su)
    assert findings(su) == []
    # Nothing already sealed was re-sealed: the old head is still a block.
    assert su.execute("SELECT hash FROM audit.seal_blocks WHERE block = %s",
                      (before["block"],)).fetchone()["hash"] == before["hash"]
    assert scalar(su, "SELECT count(*) FROM audit.seal_erasures") == 3
    # An erased event's other columns are still committed.
    erased = scalar(su, "SELECT min(event_id) FROM audit.seal_erasures")
    tamper(su, erased, f"UPDATE audit.events SET action = 'deleted' WHERE id = {erased}")
    assert [k for _, k, _ in findings(su)] == ["edited"]


def test_a_later_erasure_keeps_the_first_digest(su: Conn) -> None:
    run(su, "CREATE TABLE public.orders (id int PRIMARY KEY, a text, b text)",
        "SELECT audit.attach('public.orders')",
        "INSERT INTO public.orders VALUES (1, 'a1', 'b1')",
        "UPDATE public.orders SET a = 'a2', b = 'b2' WHERE id = 1")
    seal(su)
    ids = [r["id"] for r in su.execute("SELECT id FROM audit.events WHERE category = 'data'")]
    unerased = {i: specified_images(su, i) for i in ids}
    assert scalar(su, "SELECT audit.erase('public.orders', '1', ARRAY['a'], 'asked')") >= 1
    first = {r["event_id"]: bytes(r["images_sha256"])
             for r in su.execute("SELECT event_id, images_sha256 FROM audit.seal_erasures")}
    assert first == unerased
    images = {i: specified_images(su, i) for i in ids}
    assert scalar(su, "SELECT audit.erase('public.orders', '1', ARRAY['b'], 'asked')") >= 1
    assert {i: specified_images(su, i) for i in ids} != images  # b was really erased
    assert {r["event_id"]: bytes(r["images_sha256"])
            for r in su.execute("SELECT event_id, images_sha256 FROM audit.seal_erasures")} == first
    assert findings(su) == []
    seal(su)
    assert findings(su) == []


def seal_in_the_default_partition(conn: Conn, *times: str) -> list[int]:
    """Events at `times` (beyond every partition), sealed: the events of
    each block of the default partition."""
    conn.execute("INSERT INTO audit.events (category, action, occurred_at)"
                 " SELECT 'app', 'x', t FROM unnest(%s::timestamptz[]) AS t", (list(times),))
    seal(conn)
    return [r["events"] for r in conn.execute(
        "SELECT events FROM audit.seal_blocks WHERE partition = 'audit.events_default' ORDER BY block")]


def test_events_moved_out_of_the_default_partition_still_verify(su: Conn) -> None:
    spans = seal_in_the_default_partition(su, "2031-01-05 00:00+00", "2031-02-05 00:00+00")
    assert spans == [1, 1]  # one block per month
    su.execute("SELECT * FROM audit.maintain(0)")
    assert scalar(su, "SELECT count(*) FROM audit.events_default") == 0
    seal(su)
    assert findings(su) == []


def test_a_default_partition_block_never_spans_a_utc_month_in_any_session_time_zone(su: Conn) -> None:
    """Both events fall on 1 February in Auckland, in two UTC months."""
    su.execute("SET TimeZone = 'Pacific/Auckland'")
    assert seal_in_the_default_partition(su, "2031-01-31 20:00+00", "2031-02-01 01:00+00") == [1, 1]
    assert findings(su) == []


# -- the encoding, from its specification (docs/integrity.md#encoding) ------------------

TEXTS = ("txid", "caused_by", "category", "admin", "ip_address", "client_addr", "action",
         "entity_type", "entity_id", "previous_entity_id", "actor_id", "actor_email",
         "actor_role", "user_agent", "request_id", "ip_address_raw", "db_user",
         "application_name", "changed_columns")


def _field(data: bytes | None) -> bytes:
    return b"\xff\xff\xff\xff" if data is None else struct.pack(">i", len(data)) + data


def _text(value: str | None) -> bytes:
    return _field(None if value is None else value.encode("utf-8"))


def _images_digest(before: str | None, after: str | None) -> bytes:
    """The images digest: SHA-256 over the fields of before and after."""
    return hashlib.sha256(_text(before) + _text(after)).digest()


def _runs(ids_text: str) -> list[tuple[int, int]]:
    """A multirange's text, '{[1,11),[13,20)}', as [(1, 11), (13, 20)]."""
    return [(int(lo), int(hi)) for lo, hi in re.findall(r"\[(\d+),(\d+)\)", ids_text)]


def specified_hashes(conn: psycopg.Connection) -> dict[int, bytes]:
    """Each event's hash as docs/integrity.md specifies it, from the text of
    its columns (read in whatever client encoding the session has)."""
    rows = conn.execute(
        "SELECT id, (extract(epoch FROM occurred_at) * 1000000)::bigint::text, "
        + ", ".join(f"{c}::text" for c in TEXTS) + ", before::text, after::text"
        " FROM audit.events ORDER BY id").fetchall()
    found: dict[int, bytes] = {}
    for row in rows:
        values = list(row.values()) if isinstance(row, dict) else list(row)
        encoded = b"".join(_text(v) for v in values[1:-2]) + _images_digest(*values[-2:])
        found[values[0]] = hashlib.sha256(encoded).digest()
    return found


def sealed_hashes(conn: psycopg.Connection) -> dict[int, bytes]:
    """Each sealed id and the hash its block keeps for it."""
    found: dict[int, bytes] = {}
    for row in conn.execute("SELECT ids::text, hashes FROM audit.seal_blocks").fetchall():
        ids_text, hashes = row.values() if isinstance(row, dict) else row
        ids = [i for lo, hi in _runs(ids_text) for i in range(lo, hi)]
        found.update({i: bytes(hashes[32 * k:32 * k + 32]) for k, i in enumerate(ids)})
    return found


def test_the_event_hash_covers_every_column_but_the_id(su: Conn) -> None:
    columns = [r["attname"] for r in su.execute(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'audit.events'::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attname <> 'id'")]
    assert sorted(columns) == sorted(("occurred_at", *TEXTS, "before", "after"))


def test_an_event_with_every_column_set_seals_as_specified(su: Conn) -> None:
    """Every column non-NULL, addresses of both families with and without
    a full prefix: the hash sealed is the one docs/integrity.md specifies."""
    for addr, client in (("10.0.0.1", "::1"), ("2001:db8::1/64", "192.168.0.0/16")):
        su.execute(
            "INSERT INTO audit.events (caused_by, category, admin, ip_address, client_addr, action,"
            " entity_type, entity_id, previous_entity_id, actor_id, actor_email, actor_role,"
            " user_agent, request_id, ip_address_raw, db_user, application_name, changed_columns,"
            " before, after) VALUES (42, 'data', true, %s, %s, 'updated', 'public.t', '7', '6',"
            " 'u1', 'a@example.com', 'manager', 'Mozilla/5.0', 'req-1', 'not an address', 'alice',"
            " 'web', ARRAY['name', 'e mail'], '{\"a\": 1}', '{\"a\": [2, \"é\"]}')", (addr, client))
    assert scalar(su, "SELECT count(*) FROM audit.events AS e WHERE e IS NOT NULL") == 2
    assert seal(su)[1] == 2
    assert sealed_hashes(su) == specified_hashes(su)
    assert findings(su) == []


def non_ascii_events(conn: psycopg.Connection) -> None:
    conn.execute("SELECT audit.log_event('login', 'user', 'é€', %s::jsonb)",
                 ('{"note": "café €", "n": 1}',))
    conn.execute("INSERT INTO audit.events (category, action, actor_email, before, changed_columns)"
                 " VALUES ('app', 'noted', 'zoë@example.com', %s::jsonb, ARRAY['naïve', 'a b'])",
                 ('{"é": ["€", null, 1.50]}',))


def test_sealing_writes_the_specified_utf8_whatever_the_client_encoding(su: Conn) -> None:
    non_ascii_events(su)
    su.execute("SET client_encoding = 'LATIN9'")
    seal(su)
    su.execute("SET client_encoding = 'UTF8'")
    assert sealed_hashes(su) == specified_hashes(su)
    su.execute("SET client_encoding = 'LATIN9'")
    assert findings(su) == []
    su.execute("RESET client_encoding")


@pytest.fixture
def latin1_db(pg: Server) -> Iterator[str]:
    """DSN of a fresh database in LATIN9 (LATIN1 with '€'), auditsql installed."""
    name = unique_name("auditsql_t")
    pg.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'LATIN9'"
                               " LC_COLLATE 'C' LC_CTYPE 'C'").format(sql.Identifier(name)))
    try:
        with psycopg.connect(pg.dsn(name), autocommit=True) as conn:
            install(conn, Settings())
        yield pg.dsn(name)
    finally:
        pg.admin().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_database_not_in_utf8_seals_the_utf8_of_its_text(latin1_db: str) -> None:
    with connect(latin1_db) as conn:
        non_ascii_events(conn)
        seal(conn)
        assert sealed_hashes(conn) == specified_hashes(conn)
        assert findings(conn) == []
        tamper(conn, 1, "UPDATE audit.events SET actor_email = 'x' WHERE id = 1")
        assert findings(conn) == [(1, "edited", [1])]


def erase_non_ascii_sealed(conn: Conn) -> None:
    """Erase sealed images holding non-ASCII text, from a LATIN9 client: the
    digest erase() records must be the one sealing computed."""
    run(conn, "CREATE TABLE public.notes (id int PRIMARY KEY, body text, tag text)",
        "SELECT audit.attach('public.notes')",
        "INSERT INTO public.notes VALUES (1, 'café €', 'naïve'), (2, 'plain', NULL)",
        "UPDATE public.notes SET body = 'crème' WHERE id = 1")
    seal(conn)
    ids = [r["id"] for r in conn.execute("SELECT id FROM audit.events WHERE entity_type = 'public.notes'"
                                          " AND entity_id = '1' ORDER BY id")]
    expected = {i: specified_images(conn, i) for i in ids}
    conn.execute("SET client_encoding = 'LATIN9'")
    assert scalar(conn, "SELECT audit.erase('public.notes', '1', ARRAY['body'], 'asked')") == 2
    assert findings(conn) == []
    conn.execute("RESET client_encoding")
    assert findings(conn) == []
    recorded = conn.execute("SELECT event_id, images_sha256 FROM audit.seal_erasures").fetchall()
    assert {r["event_id"]: bytes(r["images_sha256"]) for r in recorded} == expected
    assert all(specified_images(conn, i) != expected[i] for i in ids)


def specified_images(conn: Conn, event_id: int) -> bytes:
    """The images' digest of docs/integrity.md, over the event's images."""
    row = conn.execute("SELECT before::text AS b, after::text AS a FROM audit.events WHERE id = %s",
                       (event_id,)).fetchone()
    return _images_digest(row["b"], row["a"])


def test_erasure_records_the_digest_sealing_computed_whatever_the_encoding(su: Conn, latin1_db: str) -> None:
    erase_non_ascii_sealed(su)
    with connect(latin1_db) as conn:
        erase_non_ascii_sealed(conn)


def test_blocks_hash_as_specified(su: Conn) -> None:
    """The block hash of docs/integrity.md#encoding, recomputed from the
    stored blocks: ids as runs, then the hashes in id order."""
    log(su, 5)
    su.execute("BEGIN")
    log(su, 2)  # a gap: ids sealing finds unused
    su.execute("ROLLBACK")
    log(su, 6)
    seal(su, 4)
    prev = bytes(32)
    for b in su.execute("SELECT block, ids::text AS ids, prev_hash, hash, hashes,"
                        " (extract(epoch FROM first_at) * 1000000)::bigint AS f,"
                        " (extract(epoch FROM last_at) * 1000000)::bigint AS l"
                        " FROM audit.seal_blocks ORDER BY block").fetchall():
        runs = _runs(b["ids"])
        encoded = (prev + struct.pack(">qqqq", b["block"], b["f"], b["l"], len(runs))
                   + b"".join(struct.pack(">qq", lo, hi) for lo, hi in runs) + bytes(b["hashes"]))
        assert bytes(b["prev_hash"]) == prev
        assert bytes(b["hash"]) == hashlib.sha256(encoded).digest()
        prev = bytes(b["hash"])
    assert any("," in b["ids"] for b in su.execute("SELECT ids::text AS ids FROM audit.seal_blocks"))


# -- blocks of one run whose ids interleave -----------------------------------------------

def test_ids_no_block_covers_are_found_between_interleaved_blocks(su: Conn) -> None:
    """Events alternate between two partitions, so the blocks of one run
    cover interleaved ids: an id of one block is not unsealed for lying
    inside the other's range, and an unused id between them is found."""
    su.execute("INSERT INTO audit.events (category, action, occurred_at)"
               " SELECT 'app', 'x', CASE WHEN g % 2 = 0 THEN timestamptz '2020-01-05 00:00+00'"
               "                         ELSE timestamptz '2020-02-05 00:00+00' END"
               " FROM generate_series(1, 20) AS g")
    with pytest.raises(RuntimeError):
        with su.transaction():
            su.execute("INSERT INTO audit.events (category, action, occurred_at)"
                       " VALUES ('app', 'x', '2020-01-06 00:00+00')")
            raise RuntimeError
    su.execute("INSERT INTO audit.events (category, action, occurred_at)"
               " SELECT 'app', 'x', timestamptz '2020-02-06 00:00+00' + g * interval '1 s'"
               " FROM generate_series(1, 4) AS g")
    seal(su)
    spans = su.execute("SELECT block, ids::text FROM audit.seal_blocks ORDER BY block").fetchall()
    assert len(spans) >= 2 and all("," in r["ids"] for r in spans)
    assert findings(su) == []
    unused = scalar(su, "SELECT min(g) FROM generate_series(1, (SELECT sealed_to FROM audit.seal_head)) AS g"
                        " WHERE NOT EXISTS (SELECT FROM audit.events WHERE id = g)")
    su.execute("INSERT INTO audit.events (id, category, action, occurred_at)"
               " VALUES (%s, 'app', 'forged', '2020-01-07 00:00+00')", (unused,))
    block = scalar(su, "SELECT max(block) FROM audit.seal_blocks WHERE lower(ids) <= %s", (unused,))
    assert findings(su) == [(block, "inserted", [unused])]


# -- two sealers at once (docs/integrity.md#sealing, Concurrency) ---------------------------

def test_a_second_seal_waits_for_the_first_then_seals_only_what_is_left(
        installed_db: str, su: Conn) -> None:
    log(su, 5)
    with connect(installed_db, autocommit=False) as first, connect(installed_db) as second, \
            ThreadPoolExecutor(1) as pool:
        second.execute("SET statement_timeout = '30s'")
        first_run = seal(first, 2)
        assert first_run[:2] == (3, 5)
        log(su, 3)  # writers do not wait for the first run
        waiting = pool.submit(seal, second, 2)
        deadline = time.monotonic() + 20
        while first.info.backend_pid not in scalar(su, "SELECT pg_blocking_pids(%s)",
                                                   (second.info.backend_pid,)):
            assert not waiting.done() and time.monotonic() < deadline, "the second run did not wait"
            time.sleep(0.02)
        first.commit()
        top = scalar(su, "SELECT max(id) FROM audit.events")
        assert waiting.result(timeout=30) == (2, 3, top)
    assert scalar(su, "SELECT array_agg(block ORDER BY block) FROM audit.seal_blocks") == [1, 2, 3, 4, 5]
    assert seal(su) == (0, 0, top)
    assert sealed_hashes(su).keys() == specified_hashes(su).keys()
    assert findings(su) == []
