"""What the framework integrations cost: round trips and throughput of a
tpcb-like transaction through each, against the same code without context.

Usage: python -m scripts.bench_integrations [--seconds 5] [--reps 3] [--pg-version N]
(`make bench-integrations`)

One throwaway cluster, auditsql installed, pgbench-like tables attached. For
each integration, one client runs the same transaction (three updates, a
select, an insert: pgbench's tpcb-like) in a loop:

* ``plain``         the driver's own transaction, no context;
* ``extra``         the same, with ``audit.set_context`` as one more
                    statement (the cost the integrations avoid where they can);
* ``integration``   the integration's transaction, a context in force.

Round trips per transaction are counted by a TCP relay between client and
server (each time the client speaks after the server did is one).
Throughput (transactions per second) is measured for ``--seconds`` per
variant, in slices of a quarter second taken in turns, so that load from
elsewhere on the machine hits the three variants of an integration alike;
``--reps`` such measures give the median. On loopback a round trip costs
tens of microseconds and the client's CPU dominates; ``--latency-ms``
routes the throughput runs through the relay, which then holds each of the
server's replies that long, as a network between application and database
would.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from auditsql.integrations.context import AuditContext, bind, set_context_sql
from scripts import benchtools
from tests.harness import pgcluster

ACCOUNTS = 100_000
TELLERS = 10
SETUP = f"""
CREATE TABLE branches (bid int PRIMARY KEY, bbalance int NOT NULL DEFAULT 0);
CREATE TABLE tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL DEFAULT 0);
CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL DEFAULT 0);
CREATE TABLE history (id bigserial PRIMARY KEY, tid int, bid int, aid int, delta int,
                      mtime timestamptz);
INSERT INTO branches VALUES (1);
INSERT INTO tellers SELECT t, 1 FROM generate_series(1, {TELLERS}) t;
INSERT INTO accounts SELECT a, 1 FROM generate_series(1, {ACCOUNTS}) a;
SELECT audit.attach(t::regclass) FROM unnest(ARRAY['branches', 'tellers', 'accounts',
                                                   'history']) t;
"""
# pgbench's tpcb-like, in the paramstyle of each driver.
TPCB = (
    "UPDATE accounts SET abalance = abalance + {d} WHERE aid = {a}",
    "SELECT abalance FROM accounts WHERE aid = {a}",
    "UPDATE tellers SET tbalance = tbalance + {d} WHERE tid = {t}",
    "UPDATE branches SET bbalance = bbalance + {d} WHERE bid = 1",
    "INSERT INTO history (tid, bid, aid, delta, mtime) VALUES ({t}, 1, {a}, {d}, now())",
)
PYFORMAT = [s.format(a="%(a)s", t="%(t)s", d="%(d)s") for s in TPCB]
NAMED = [s.format(a=":a", t=":t", d=":d") for s in TPCB]
CONTEXT = AuditContext.of(actor_id="user-1", email="user-1@example.com", role="member",
                          ip_address="203.0.113.9", user_agent="bench",
                          request_id="bench-request")
EXTRA = set_context_sql(CONTEXT)


def draw() -> dict[str, int]:
    return {"a": random.randint(1, ACCOUNTS), "t": random.randint(1, TELLERS),
            "d": random.randint(-5000, 5000)}


# -- the relay that counts round trips -----------------------------------------


@dataclass
class Relay:
    """A TCP relay to the server counting the client's turns to speak, and
    holding each reply *latency* seconds."""

    target: tuple[str, int]
    latency: float = 0.0
    port: int = 0
    turns: int = 0
    _last: str = "server"
    _server: socket.socket | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        self._server = socket.create_server((pgcluster.TCP_HOST, 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            assert self._server is not None
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            lock = threading.Lock()
            threading.Thread(target=self._pipe, args=(client, upstream, "client", lock),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, "server", lock),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, side: str,
              lock: threading.Lock) -> None:
        try:
            while data := src.recv(65536):
                with lock:
                    if side == "client" and self._last == "server":
                        self.turns += 1
                    # A reply may come in several pieces: it is held once.
                    hold = side == "server" and self._last == "client" and self.latency
                    self._last = side
                if hold:
                    time.sleep(self.latency)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()


# -- the configurations --------------------------------------------------------

Loop = Callable[[float], int]  # run for so many seconds, return transactions done
Setup = Callable[[str], tuple[Loop, Callable[[], None]]]  # dsn -> (loop, close)


def psycopg_setup(variant: str) -> Setup:
    def setup(dsn: str) -> tuple[Loop, Callable[[], None]]:
        from auditsql.integrations import psycopg as audit_psycopg

        conn = psycopg.connect(dsn)

        def one() -> None:
            params = draw()
            if variant == "integration":
                block: Any = audit_psycopg.transaction(conn)
            else:
                block = conn.transaction()
            with block:
                if variant == "extra":
                    conn.execute(EXTRA)
                for statement in PYFORMAT:
                    conn.execute(statement, params)

        return _sync_loop(one), conn.close
    return setup


def sqlalchemy_setup(variant: str) -> Setup:
    def setup(dsn: str) -> tuple[Loop, Callable[[], None]]:
        from sqlalchemy import create_engine, text

        from auditsql.integrations.sqlalchemy import instrument
        engine = create_engine(_url(dsn, "postgresql+psycopg"), pool_size=1)
        if variant == "integration":
            instrument(engine)
        statements = [text(s) for s in NAMED]

        def one() -> None:
            params = draw()
            with engine.begin() as conn:
                if variant == "extra":
                    conn.exec_driver_sql(EXTRA)
                for statement in statements:
                    conn.execute(statement, params)

        return _sync_loop(one), engine.dispose
    return setup


def django_setup(variant: str) -> Setup:
    def setup(dsn: str) -> tuple[Loop, Callable[[], None]]:
        import django
        from django.conf import settings
        from django.db import connection, transaction

        from auditsql.integrations.django.wrapper import ContextWrapper
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        database = {"ENGINE": "django.db.backends.postgresql", "NAME": params["dbname"],
                    "USER": params["user"], "HOST": params["host"],
                    "PORT": str(params["port"])}
        if not settings.configured:
            settings.configure(DATABASES={"default": database}, INSTALLED_APPS=[])
            django.setup()
        connection.close()
        connection.settings_dict.update(database)
        wrapper = ContextWrapper("audit")

        def one() -> None:
            v = draw()
            drawn = (v["a"], v["t"], v["d"])
            with transaction.atomic(), connection.cursor() as cursor:
                if variant == "extra":
                    cursor.execute(EXTRA)
                for statement, indexes in zip(DJANGO, DJANGO_ARGS, strict=True):
                    cursor.execute(statement, [drawn[i] for i in indexes])

        def wrapped(seconds: float) -> int:
            if variant != "integration":
                return _sync_loop(one)(seconds)
            with connection.execute_wrapper(wrapper):
                return _sync_loop(one)(seconds)

        return wrapped, connection.close
    return setup


# Django and asyncpg take positional parameters: each statement's, as
# indexes into (a, t, d).
DJANGO = [
    "UPDATE accounts SET abalance = abalance + %s WHERE aid = %s",
    "SELECT abalance FROM accounts WHERE aid = %s",
    "UPDATE tellers SET tbalance = tbalance + %s WHERE tid = %s",
    "UPDATE branches SET bbalance = bbalance + %s WHERE bid = 1",
    "INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (%s, 1, %s, %s, now())",
]
DJANGO_ARGS = ((2, 0), (0,), (2, 1), (2,), (1, 0, 2))


def asyncpg_setup(variant: str) -> Setup:
    def setup(dsn: str) -> tuple[Loop, Callable[[], None]]:
        import asyncpg

        from auditsql.integrations import asyncpg as audit_asyncpg
        loop = asyncio.new_event_loop()
        conn = loop.run_until_complete(asyncpg.connect(_uri(dsn)))

        async def one() -> None:
            v = draw()
            block = (audit_asyncpg.transaction(conn) if variant == "integration"
                     else conn.transaction())
            async with block:
                if variant == "extra":
                    await conn.execute(EXTRA)
                drawn = (v["a"], v["t"], v["d"])
                for statement, indexes in zip(DOLLAR, ASYNCPG_ARGS, strict=True):
                    await conn.execute(statement, *[drawn[i] for i in indexes])

        def run(seconds: float) -> int:
            async def main() -> int:
                done, end = 0, time.monotonic() + seconds
                with bind(CONTEXT):
                    while time.monotonic() < end:
                        await one()
                        done += 1
                return done
            return loop.run_until_complete(main())

        def close() -> None:
            loop.run_until_complete(conn.close())
            loop.close()

        return run, close
    return setup


ASYNCPG_ARGS = ((0, 2), (0,), (1, 2), (2,), (1, 0, 2))
DOLLAR = [
    "UPDATE accounts SET abalance = abalance + $2 WHERE aid = $1",
    "SELECT abalance FROM accounts WHERE aid = $1",
    "UPDATE tellers SET tbalance = tbalance + $2 WHERE tid = $1",
    "UPDATE branches SET bbalance = bbalance + $1 WHERE bid = 1",
    "INSERT INTO history (tid, bid, aid, delta, mtime) VALUES ($1, 1, $2, $3, now())",
]


def sqlalchemy_async_setup(variant: str) -> Setup:
    def setup(dsn: str) -> tuple[Loop, Callable[[], None]]:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        from auditsql.integrations.sqlalchemy import instrument
        loop = asyncio.new_event_loop()
        engine = create_async_engine(_url(dsn, "postgresql+asyncpg"), pool_size=1)
        if variant == "integration":
            instrument(engine)
        statements = [text(s) for s in NAMED]

        def run(seconds: float) -> int:
            async def main() -> int:
                done, end = 0, time.monotonic() + seconds
                with bind(CONTEXT):
                    while time.monotonic() < end:
                        params = draw()
                        async with engine.begin() as conn:
                            if variant == "extra":
                                await conn.exec_driver_sql(EXTRA)
                            for statement in statements:
                                await conn.execute(statement, params)
                        done += 1
                return done
            return loop.run_until_complete(main())

        def close() -> None:
            loop.run_until_complete(engine.dispose())
            loop.close()

        return run, close
    return setup


def _sync_loop(one: Callable[[], None]) -> Loop:
    def run(seconds: float) -> int:
        done, end = 0, time.monotonic() + seconds
        with bind(CONTEXT):
            while time.monotonic() < end:
                one()
                done += 1
        return done
    return run


def _url(dsn: str, driver: str) -> Any:
    from sqlalchemy import URL
    p = psycopg.conninfo.conninfo_to_dict(dsn)
    return URL.create(driver, username=str(p["user"]), host=str(p["host"]),
                      port=int(p["port"]), database=str(p["dbname"]))


def _uri(dsn: str) -> str:
    p = psycopg.conninfo.conninfo_to_dict(dsn)
    return f"postgresql://{p['user']}@{p['host']}:{p['port']}/{p['dbname']}"


INTEGRATIONS: dict[str, Callable[[str], Setup]] = {
    "psycopg": psycopg_setup,
    "asyncpg": asyncpg_setup,
    "sqlalchemy (psycopg)": sqlalchemy_setup,
    "sqlalchemy async (asyncpg)": sqlalchemy_async_setup,
    "django (psycopg)": django_setup,
}
VARIANTS = ("plain", "extra", "integration")


def round_trips(setup: Setup, relay_dsn: str, relay: Relay, transactions: int = 50) -> float:
    """Round trips per transaction through the relay, after a warm-up."""
    loop, close = setup(relay_dsn)
    try:
        loop(0.2)
        start, done = relay.turns, 0
        while done < transactions:  # in short slices, until enough are done
            done += loop(0.001)
        return (relay.turns - start) / done
    finally:
        close()


SLICE = 0.25


def interleaved(make: Callable[[str], Setup], dsn: str, seconds: float) -> dict[str, float]:
    """Transactions per second of each variant, run in turns, slice by slice."""
    runs = {variant: make(variant)(dsn) for variant in VARIANTS}
    done = dict.fromkeys(VARIANTS, 0)
    try:
        for loop, _ in runs.values():
            loop(0.2)  # connect, warm caches
        for turn in range(max(1, round(seconds / SLICE))):
            order = VARIANTS[turn % 3:] + VARIANTS[:turn % 3]
            for variant in order:
                done[variant] += runs[variant][0](SLICE)
    finally:
        for _, close in runs.values():
            close()
    measured = max(1, round(seconds / SLICE)) * SLICE
    return {variant: count / measured for variant, count in done.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pg-version", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="hold each server reply this long (throughput runs only)")
    parser.add_argument("--only", action="append", choices=sorted(INTEGRATIONS),
                        help="run only this integration (repeatable)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.reps < 1 or args.latency_ms < 0:
        print("bench_integrations: --seconds must be positive, --reps at least 1 and "
              "--latency-ms not negative",
              file=sys.stderr)
        return 2
    settings = {"fsync": "on", "synchronous_commit": "off", "shared_buffers": "256MB"}
    cluster = benchtools.start_cluster(args.pg_version, settings)
    if cluster is None:
        return 1
    counter = Relay((pgcluster.TCP_HOST, cluster.port))
    delayed = Relay((pgcluster.TCP_HOST, cluster.port), latency=args.latency_ms / 1000)
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        dsn = cluster.dsn("bench", host=pgcluster.TCP_HOST)
        from auditsql import Audit
        with Audit(dsn) as audit:
            audit.install()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SETUP)
        counter.start()
        counting_dsn = cluster.dsn("bench", host=pgcluster.TCP_HOST, port=counter.port)
        run_dsn = dsn
        if args.latency_ms:
            delayed.start()
            run_dsn = cluster.dsn("bench", host=pgcluster.TCP_HOST, port=delayed.port)
        print(benchtools.describe(dsn, settings))
        names = args.only or list(INTEGRATIONS)
        trips = {(name, variant): round_trips(INTEGRATIONS[name](variant), counting_dsn,
                                              counter)
                 for name in names for variant in VARIANTS}
        tps: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.reps):
            print(f"repetition {rep + 1} of {args.reps}", file=sys.stderr)
            for name in names:
                for variant, value in interleaved(INTEGRATIONS[name], run_dsn,
                                                  args.seconds).items():
                    tps.setdefault((name, variant), []).append(value)
        latency = f", {args.latency_ms:g} ms added to each reply" if args.latency_ms else ""
        print(f"\ntpcb-like transactions, one client{latency}; {args.seconds:g} s per variant"
              f" in turns, median of {args.reps}\n")
        # "vs plain" includes what a context costs the server (the capture
        # stores it); "vs extra" compares the same server work, with and
        # without the round trip the integration saves.
        print(f"| {'integration':<27} | {'variant':<11} | round trips | {'tps':>7} "
              f"| vs plain | vs extra |")
        print(f"|{'-' * 29}|{'-' * 13}|{'-' * 13}|{'-' * 9}|{'-' * 10}|{'-' * 10}|")
        for name in names:
            plain = statistics.median(tps[(name, "plain")])
            extra = statistics.median(tps[(name, "extra")])
            for variant in VARIANTS:
                value = statistics.median(tps[(name, variant)])
                print(f"| {name:<27} | {variant:<11} | {trips[(name, variant)]:>11.1f} "
                      f"| {value:>7.0f} | {100 * (value / plain - 1):>+7.1f}% "
                      f"| {100 * (value / extra - 1):>+7.1f}% |")
        return 0
    finally:
        counter.stop()
        delayed.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
