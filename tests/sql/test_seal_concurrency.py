"""Sealing while transactions commit out of id order: nothing committed is
skipped or sealed twice, and no writer ever waits for the sealer
(docs/integrity.md#sealing)."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

from tests.sql.sqltools import Conn, connect, run, scalar


def seal(conn: Conn) -> int:
    return int(scalar(conn, "SELECT sealed_to FROM audit.seal(50)"))


def covered(conn: Conn) -> list[int]:
    """Every id the chain covers, once per block that covers it."""
    return [r["id"] for r in conn.execute(
        "SELECT g.id FROM audit.seal_blocks AS b, unnest(b.ids) AS r,"
        " generate_series(lower(r), upper(r) - 1) AS g(id) ORDER BY 1").fetchall()]


def committed(conn: Conn) -> list[int]:
    return [r["id"] for r in conn.execute("SELECT id FROM audit.events ORDER BY id").fetchall()]


@pytest.mark.parametrize("write", [
    "SELECT audit.log_event('login', 'user', 'slow')",
    "INSERT INTO public.t VALUES (2)",
    "TRUNCATE public.t",
    "SELECT audit.set_retention('saas')",
], ids=["log-event", "captured-insert", "captured-truncate", "system-event"])
def test_an_open_transaction_holds_the_bound_below_its_id(installed_db: str, su: Conn,
                                                          write: str) -> None:
    """Whatever its first write recorded: an event of its own, a captured
    row or TRUNCATE, a system event."""
    run(su, "CREATE TABLE public.t (id int PRIMARY KEY)", "SELECT audit.attach('public.t')",
        "INSERT INTO public.t VALUES (1)")
    with connect(installed_db, autocommit=False) as slow:
        slow.execute(write)
        early = scalar(slow, "SELECT min(id) FROM audit.events WHERE txid = txid_current()")
        assert early is not None  # the write recorded an event
        later = scalar(su, "SELECT audit.log_event('login', 'user', 'quick')")
        assert later > early
        # The later event is committed, the earlier not yet: neither is sealed.
        assert seal(su) < early
        assert early not in covered(su) and later not in covered(su)
        slow.commit()
    # The first run after the commit seals both, from the mark or at once.
    sealed_to = seal(su)
    assert sealed_to >= later
    assert {early, later} <= set(covered(su))
    assert scalar(su, "SELECT count(*) FROM audit.verify_chain()") == 0


def test_a_mark_left_by_a_run_is_sealed_by_a_later_one(installed_db: str, su: Conn) -> None:
    with connect(installed_db, autocommit=False) as slow:
        slow.execute("SELECT txid_current()")  # an older transaction, still running
        quick = scalar(su, "SELECT audit.log_event('login', 'user', 'quick')")
        assert seal(su) < quick
        mark = su.execute("SELECT mark_id, mark_xid FROM audit.seal_head").fetchone()
        assert mark is not None and mark["mark_id"] >= quick
        slow.commit()
    with connect(installed_db, autocommit=False) as busy:
        own = scalar(busy, "SELECT audit.log_event('login', 'user', 'busy')")  # has an id first
        # In a transaction that already has an id, only the mark can be sealed.
        assert int(scalar(busy, "SELECT sealed_to FROM audit.seal()")) >= quick
        assert own not in covered(busy)  # not its own uncommitted event
        busy.commit()
    assert scalar(su, "SELECT count(*) FROM audit.verify_chain()") == 0


def test_writers_never_wait_for_sealers_and_every_event_is_sealed_once(
        installed_db: str, su: Conn) -> None:
    stop = threading.Event()
    problems: list[str] = []
    sealer_pids: set[int] = set()
    waited: list[tuple[int, list[int]]] = []
    runs = [0]

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        with connect(installed_db, autocommit=False) as conn:
            while not stop.is_set():
                try:
                    for _ in range(rng.randint(1, 5)):
                        conn.execute("SELECT audit.log_event('login', 'user', %s)", (str(seed),))
                    if rng.random() < 0.2:
                        time.sleep(rng.uniform(0.05, 0.4))  # a long transaction
                    if rng.random() < 0.25:
                        conn.rollback()
                    else:
                        conn.commit()
                except psycopg.Error as exc:  # pragma: no cover - reported below
                    problems.append(f"writer {seed}: {exc}")
                    conn.rollback()

    def sealer() -> None:
        with connect(installed_db) as conn:
            sealer_pids.add(int(scalar(conn, "SELECT pg_backend_pid()")))
            while not stop.is_set():
                try:
                    seal(conn)
                    runs[0] += 1
                except psycopg.Error as exc:  # pragma: no cover - reported below
                    problems.append(f"sealer: {exc}")
                time.sleep(0.02)

    def sampler() -> None:
        with connect(installed_db) as conn:
            while not stop.is_set():
                for row in conn.execute(
                        "SELECT pid, pg_blocking_pids(pid) AS by FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"):
                    waited.append((row["pid"], row["by"]))
                time.sleep(0.005)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=sealer) for _ in range(2)]
    threads.append(threading.Thread(target=sampler))
    for thread in threads:
        thread.start()
    time.sleep(6)
    stop.set()
    for thread in threads:
        thread.join()

    assert problems == []
    assert runs[0] > 20
    writers_blocked_by_sealers = [(pid, by) for pid, by in waited
                                  if pid not in sealer_pids and set(by) & sealer_pids]
    assert writers_blocked_by_sealers == []
    seal(su)
    seal(su)  # the mark of the one before, if a sampler's transaction was open then
    events = committed(su)
    assert len(events) > 100
    assert covered(su) == events  # each committed id once, none skipped, none extra
    assert scalar(su, "SELECT count(*) FROM audit.verify_chain()") == 0
