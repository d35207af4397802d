"""Upgrading an installation of auditsql 0.1.0, made by its own install
script as released (tests/upgrade/frozen/), with audited tables, events,
policies, a retention policy and a legal hold: afterwards it is what a fresh
install of this version set up the same way is, every event is kept, and
capture goes on; writes made while the upgrade runs are all recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from auditsql import __version__, catalog, installer
from auditsql.fingerprint import INSTALLED, classify
from auditsql.render import install_definitions
from tests.harness.server import Server
from tests.sql.sqltools import connect, scalar, seal
from tests.upgrade.conftest import frozen_script

# --------------------------------------------------------------------------
# What to compare
# --------------------------------------------------------------------------

SCHEMAS = ("audit", "auditsql_guard_audit")

# The name a generated capture function goes by, whatever its table's oid.
CAPTURE = r"capture_[0-9]+"

SHAPE = {
    "schemas": """
        SELECT n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text,
               obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace AS n WHERE n.nspname = ANY (%(schemas)s)""",
    "functions": """
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               md5(p.prosrc), p.prosecdef, p.proconfig::text, pg_get_userbyid(p.proowner),
               p.proacl::text, obj_description(p.oid, 'pg_proc')
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY (%(schemas)s) AND p.proname !~ '^capture_[0-9]+$'""",
    # Generated per table: named by its table, the table's oid left out.
    "capture functions": """
        SELECT c.oid::regclass::text,
               md5(replace(p.prosrc, c.oid::text, 'OID')), p.prosecdef,
               p.proconfig::text, pg_get_userbyid(p.proowner), p.proacl::text
        FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        JOIN pg_class AS c ON p.proname = 'capture_' || c.oid
        WHERE n.nspname = 'audit'""",
    "relations": """
        SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
               obj_description(c.oid, 'pg_class'), c.relrowsecurity,
               CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END,
               (SELECT array_agg(format('%%s %%s %%s %%s', a.attname,
                                        format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                        pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum)
                FROM pg_attribute AS a
                LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text,
               (SELECT array_agg(k.conname || ' ' || pg_get_constraintdef(k.oid)
                                 ORDER BY k.conname)
                FROM pg_constraint AS k WHERE k.conrelid = c.oid)::text,
               pg_get_expr(c.relpartbound, c.oid)
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY (%(schemas)s)""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname,
               regexp_replace(pg_get_triggerdef(t.oid), 'capture_[0-9]+', 'capture_N', 'g'),
               t.tgenabled,
               CASE WHEN n.nspname = 'audit' THEN obj_description(t.oid, 'pg_trigger') END
        FROM pg_trigger AS t
        JOIN pg_class AS c ON c.oid = t.tgrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND n.nspname IN ('audit', 'public')""",
    "event triggers": """
        SELECT e.evtname, e.evtevent, e.evtfoid::regprocedure::text, e.evtenabled,
               e.evttags::text, obj_description(e.oid, 'pg_event_trigger')
        FROM pg_event_trigger AS e""",
    "grants on application tables": """
        SELECT c.oid::regclass::text, c.relacl::text
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'""",
    "audited tables": """
        SELECT t.relid::regclass::text, t.id_columns, t.id_source, t.capture, t.exclude,
               t.redact, t.on_change, t.require_actor, t.granted_select, t.id_trusted,
               (SELECT array_agg(v ->> 'name' ORDER BY v ->> 'name')
                FROM jsonb_each(t.triggers) AS e(k, v))::text,
               t.detached_partitions,
               (SELECT array_agg(k::regclass::text ORDER BY 1) FROM unnest(t.select_kept) AS k)
        FROM audit.tables AS t""",
    "settings": "SELECT admin_roles, require_actor FROM audit.settings",
    "retention": "SELECT policy, keep FROM audit.retention",
    "legal holds": "SELECT entity_type, entity_id, reason FROM audit.legal_holds",
}


def shape(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog as auditsql made it, in terms that do not depend on oids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {what: sorted(conn.execute(query, {"schemas": list(SCHEMAS)}).fetchall(),
                             key=repr)
                for what, query in SHAPE.items()}


def rows(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def all_events(dsn: str) -> list[tuple[Any, ...]]:
    return rows(dsn, "SELECT e.* FROM audit.events AS e ORDER BY e.id")


def not_installed(dsn: str) -> list[tuple[str, str, str, str]]:
    """Every object whose fingerprint does not say installed."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        installed = catalog.installation(cur, "audit")
        script = install_definitions(installed.settings, conn.info.server_version)
        return [(s.kind, s.identity, s.state, s.reason)
                for s in classify(script, catalog.fingerprinted_objects(cur, "audit"),
                                  __version__)
                if s.state != INSTALLED]


def verify(dsn: str) -> dict[str, str]:
    """What `auditsql verify` says of each check."""
    res = subprocess.run([sys.executable, "-m", "auditsql", "verify", "--dsn", dsn, "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode in (0, 1), res.stderr
    return {c["id"]: c["status"] for c in json.loads(res.stdout)["checks"]}


def upgrade(dsn: str) -> installer.Upgrade:
    with psycopg.connect(dsn) as conn:
        return installer.upgrade(conn, "audit")


# Capture after the upgrade: each kind of write, a policy, TRUNCATE.
AFTER = """
INSERT INTO public.orders VALUES (10, 'new', 's10', 'user');
UPDATE public.orders SET role = 'admin', secret = 't10' WHERE id = 10;
DELETE FROM public.orders WHERE id = 10;
INSERT INTO public.bulk SELECT g, 'z' FROM generate_series(100, 102) AS g;
INSERT INTO public.parted VALUES (10, '2026-05-01', 'c');
TRUNCATE public.bulk, public.parted;
"""
AFTER_EVENTS = sorted([
    ("public.orders", "10", "created"), ("public.orders", "10", "updated"),
    ("public.orders", "10", "role_changed"), ("public.orders", "10", "deleted"),
    ("public.bulk", "100", "created"), ("public.bulk", "101", "created"),
    ("public.bulk", "102", "created"),
    *[("public.bulk", str(i), "truncated") for i in [*range(1, 16), 100, 101, 102]],
    ("public.parted", "[10, \"2026-05-01\"]", "created"),
    *[("public.parted", key, "truncated")
      for key in ('[1, "2026-03-01"]', '[2, "2026-04-01"]', '[10, "2026-05-01"]')],
])


def captured_after(dsn: str) -> list[tuple[str, str, str]]:
    """Run AFTER, and return the events it recorded."""
    (last,) = rows(dsn, "SELECT max(id) FROM audit.events")[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(AFTER)
    return sorted(rows(dsn, "SELECT entity_type, entity_id, action FROM audit.events"
                            " WHERE id > %s AND category IN ('data', 'auth')", (last,)))


# --------------------------------------------------------------------------
# The upgrade, alone
# --------------------------------------------------------------------------


def test_upgrade_from_0_1_0_ends_as_a_fresh_install(installed_0_1_0: str, fresh: str) -> None:
    old = installed_0_1_0
    before = all_events(old)
    assert rows(old, "SELECT version FROM audit.installation") == [("0.1.0",)]

    done = upgrade(old)
    assert (done.from_version, done.to_version) == ("0.1.0", __version__)
    assert sorted(r.table for r in done.reattached) == [
        "public.bulk", "public.orders", "public.parted", "public.scratch"]
    assert done.unresolved == []

    # Every event kept as it was.
    assert all_events(old)[:len(before)] == before
    # Every object as this version makes it; the catalog, the grants and
    # the installation's records as a fresh install of this version has them.
    assert not_installed(old) == []
    assert shape(old) == shape(fresh)
    assert verify(old) == verify(fresh)
    # Capture goes on, policies included.
    assert captured_after(old) == AFTER_EVENTS == captured_after(fresh)
    assert rows(old, "SELECT after ->> 'secret' FROM audit.events WHERE action = 'created'"
                     " AND entity_type = 'public.orders' AND entity_id = '10'") == [
        ("[redacted]",)]
    # The events 0.1.0 recorded are sealed like any other, and verify.
    assert rows(old, "SELECT block FROM audit.seal_head") == [(0,)]
    with connect(old) as conn:
        assert seal(conn)[1] == scalar(conn, "SELECT count(*) FROM audit.events")
    assert rows(old, "SELECT count(*) FROM audit.verify_chain()") == [(0,)]
    # Upgrading again changes nothing.
    again = upgrade(old)
    assert again.up_to_date, again


def test_detach_after_the_upgrade_revokes_what_0_1_0_granted_and_keeps_the_rest(
        db: str, pg: Server) -> None:
    """0.1.0 kept one flag per table for the SELECT attach granted the owner
    role; the step turns it into the members detach leaves: all of them
    where 0.1.0's attach granted nothing (the owner role could read them
    before), none where it granted any, as 0.1.0's detach would have."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(frozen_script("0.1.0", pg.version_num).encode())
        conn.execute("CREATE TABLE public.read_before (id int PRIMARY KEY);"
                     " GRANT SELECT ON public.read_before TO auditsql_owner;"
                     " CREATE TABLE public.granted (id int PRIMARY KEY);"
                     " SELECT audit.attach('public.read_before');"
                     " SELECT audit.attach('public.granted');")
    upgrade(db)
    assert rows(db, "SELECT relid::regclass::text, select_kept = ARRAY[relid]"
                    " FROM audit.tables ORDER BY 1") == [
        ("granted", False), ("read_before", True)]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT audit.detach('public.read_before'); SELECT audit.detach('public.granted')")
    assert rows(db, "SELECT has_table_privilege('auditsql_owner', 'public.read_before', 'SELECT'),"
                    " has_table_privilege('auditsql_owner', 'public.granted', 'SELECT')") == [
        (True, False)]


def test_install_over_0_1_0_applies_the_steps_too(installed_0_1_0: str) -> None:
    """`auditsql install` on an existing installation upgrades it as
    `auditsql upgrade` does."""
    res = subprocess.run([sys.executable, "-m", "auditsql", "install", "--dsn", installed_0_1_0],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert rows(installed_0_1_0, "SELECT version FROM audit.installation"
                                 " ORDER BY installed_at") == [("0.1.0",), (__version__,)]
    assert rows(installed_0_1_0, "SELECT attname FROM pg_attribute WHERE attrelid ="
                                 " 'audit.tables'::regclass AND attnum > 12 ORDER BY attnum") == [
        ("id_trusted",), ("triggers",), ("detached_partitions",), ("select_kept",)]
    assert not_installed(installed_0_1_0) == []


# --------------------------------------------------------------------------
# Writers at work while it runs
# --------------------------------------------------------------------------


@dataclass
class Writer:
    """A connection writing to one audited table until told to stop, one
    transaction per statement, recording what it committed."""

    dsn: str
    table: str
    done: list[tuple[str, str, str]] = field(default_factory=list)  # (table, id, action)
    errors: list[BaseException] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Writer:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                n = 1000
                while not self.stop.is_set():
                    n += 1
                    for statement, params, expected in self.work(n):
                        began = time.monotonic()
                        conn.execute(statement, params)
                        self.latencies.append((began, time.monotonic() - began))
                        self.done.extend(expected)
        except BaseException as exc:
            self.errors.append(exc)

    def work(self, n: int) -> Iterator[tuple[str, tuple[Any, ...], list[tuple[str, str, str]]]]:
        name = f"public.{self.table}"
        if self.table == "orders":
            yield ("INSERT INTO public.orders VALUES (%s, 'new', 's', 'user')", (n,),
                   [(name, str(n), "created")])
            yield ("UPDATE public.orders SET status = 'paid' WHERE id = %s", (n,),
                   [(name, str(n), "updated")])
            if n % 3 == 0:
                yield ("DELETE FROM public.orders WHERE id = %s", (n,),
                       [(name, str(n), "deleted")])
        elif self.table == "bulk":
            ids = [n * 10 + i for i in range(3)]
            yield ("INSERT INTO public.bulk SELECT unnest(%s::int[]), 'w'", (ids,),
                   [(name, str(i), "created") for i in ids])
        elif self.table == "parted":
            yield ("INSERT INTO public.parted VALUES (%s, '2026-06-01', 'w')", (n,),
                   [(name, f'[{n}, "2026-06-01"]', "created")])
        elif self.table == "scratch":
            yield ("INSERT INTO public.scratch VALUES (%s, 'w')", (n,),
                   [(name, str(n), "created")])
            if n % 2 == 0:
                yield ("TRUNCATE public.scratch", (),
                       [(name, str(k), "truncated") for k in (n - 1, n)])

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), f"the writer on {self.table} is stuck"


def wait_for(writers: list[Writer], more: int, timeout: float = 60) -> None:
    """Until each writer has committed ``more`` statements more than now."""
    goal = [len(w.latencies) + more for w in writers]
    deadline = time.monotonic() + timeout
    while any(len(w.latencies) < g for w, g in zip(writers, goal)):
        assert time.monotonic() < deadline, "writers made no progress"
        assert not any(w.errors for w in writers), [w.errors for w in writers]
        time.sleep(0.02)


def recorded(dsn: str, first_id: int) -> list[tuple[str, str, str]]:
    return sorted(rows(dsn, "SELECT entity_type, entity_id, action FROM audit.events"
                            " WHERE id > %s AND category = 'data'", (first_id,)))


def test_writes_during_the_upgrade_are_all_captured(installed_0_1_0: str) -> None:
    dsn = installed_0_1_0
    before = all_events(dsn)
    writers = [Writer(dsn, t).start() for t in ("orders", "bulk", "parted", "scratch")]
    try:
        wait_for(writers, 5)
        done = upgrade(dsn)
        wait_for(writers, 5)
    finally:
        for w in writers:
            w.finish()
    assert [w.errors for w in writers] == [[], [], [], []]
    assert (done.from_version, done.to_version) == ("0.1.0", __version__)
    assert all_events(dsn)[:len(before)] == before
    expected = sorted(e for w in writers for e in w.done)
    assert recorded(dsn, before[-1][0]) == expected
    assert not_installed(dsn) == []


def test_a_long_transaction_holds_the_upgrade_back_not_the_writers(
        installed_0_1_0: str) -> None:
    """A transaction holding an audited table longer than the lock timeout:
    the upgrade gives up waiting and tries again until it is done, and in
    the meantime the writers of another table get through."""
    dsn = installed_0_1_0
    before = all_events(dsn)
    hold = 10.0
    writer = Writer(dsn, "orders").start()
    holding = threading.Event()

    def long_transaction() -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute("INSERT INTO public.bulk VALUES (5000, 'held')")
            holding.set()
            time.sleep(hold)
            conn.commit()

    holder = threading.Thread(target=long_transaction, daemon=True)
    try:
        wait_for([writer], 5)
        holder.start()
        assert holding.wait(timeout=30)
        began = time.monotonic()
        done = upgrade(dsn)
        took = time.monotonic() - began
        wait_for([writer], 5)
    finally:
        writer.finish()
        holder.join(timeout=60)
    assert writer.errors == []
    assert (done.from_version, done.to_version) == ("0.1.0", __version__)
    assert took > hold / 2, "the upgrade did not wait for the long transaction"
    # While the upgrade kept trying, writes to orders went on: none waited
    # for the long transaction to end.
    during = [seconds for start, seconds in writer.latencies if began <= start < began + hold]
    assert during, "no write to orders while the long transaction held bulk"
    assert max(seconds for _, seconds in writer.latencies) < hold / 2
    expected = sorted([*writer.done, ("public.bulk", "5000", "created")])
    assert recorded(dsn, before[-1][0]) == expected
    assert not_installed(dsn) == []
