"""auditsql.Audit, the library face: what an application does with it, the
results it returns and the errors it raises. The CLI tests run the same
paths through the commands."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from auditsql import Audit, Report, RetentionStatus, Roles, Status, errors
from auditsql.catalog import AuditedTable
from auditsql.integrity import Digest, Sealed, load_digest
from auditsql.installer import Tables, Upgrade

from tests.sql.sqltools import LAST_DRAWN_ID, Conn, brief, connect, events, scalar, until_sealed
from tests.sql.test_seal import log, seal, tamper, unseal_everything


@pytest.fixture
def orders(db: str) -> str:
    """A database with one table, nothing installed."""
    with connect(db) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric, note text)")
        conn.execute("INSERT INTO orders VALUES (1, 10, 'a')")
    return db


def test_an_application_installs_attaches_verifies_and_reads(orders: str) -> None:
    with Audit(orders) as audit:
        assert audit.install(retention="saas") == audit.status().version
        attached = audit.attach("orders", exclude=["note"])
        assert attached == Tables(["public.orders"], [])
        with connect(orders) as conn:
            conn.execute("UPDATE orders SET total = 11, note = 'b'")
        status = audit.status()
        assert isinstance(status, Status) and status.policy and status.policy.name == "saas"
        [table] = status.tables
        assert isinstance(table, AuditedTable) and table.entity_type == "public.orders"
        assert table.exclude == ["note"] and table.healthy
        assert audit.tables() == status.tables
        report = audit.verify(expect=["orders"])
        assert isinstance(report, Report) and report.result != "fail", report.failed
        assert {r.id for r in report.results} >= {"tables.expected", "retention.policy_set"}
        assert report.installed_version == status.version
        assert not audit.upgrade().reattached
    with connect(orders) as conn:
        [event] = events(conn, "public.orders")
        assert event["action"] == "updated" and "note" not in event["after"]


def test_retention_holds_and_erasure(orders: str) -> None:
    with Audit(orders) as audit:
        audit.install()
        assert audit.policy() is None
        with pytest.raises(errors.NoPolicy):
            audit.run_retention()
        done = audit.set_retention("medical")
        assert done.changed and done.policy.keep == "5 years" and done.previous is None
        with pytest.raises(errors.PolicyRefused):
            audit.set_retention("2 years")  # shorter than the policy in force
        audit.attach("orders")
        with connect(orders) as conn:
            conn.execute("UPDATE orders SET note = 'secret'")
        placed = audit.hold("public.orders", "1", "litigation")
        assert placed.placed and placed.events == 1
        assert [h.entity_id for h in audit.holds()] == ["1"]
        found = audit.retention_status()
        assert isinstance(found, RetentionStatus) and len(found.holds) == 1
        assert found.partitions.current_month_covered and found.oldest_event is not None
        with pytest.raises(errors.HeldEntity):
            audit.erase("public.orders", "1", reason="request", columns=["note"])
        assert audit.release("public.orders", "1", "settled").entity_id == "1"
        assert audit.erase("public.orders", "1", reason="request", columns=["note"]) == 1
        planned = audit.run_retention(dry_run=True)
        assert planned.removed == [] and audit.run_retention().removed == []


def test_a_connection_given_is_used_and_left_open(orders: str) -> None:
    with psycopg.connect(orders) as conn:
        with Audit(conn, schema="trail") as audit:
            audit.install(roles=Roles(owner="trail_owner", reader="trail_reader",
                                      writer="trail_writer", admin="trail_admin",
                                      operator="trail_operator"))
            assert audit.status().schema == "trail"
        assert not conn.closed
        with connect(orders) as other:
            assert scalar(other, "SELECT nspowner::regrole::text FROM pg_namespace"
                          " WHERE nspname = 'trail'") == "trail_owner"
        with Audit(conn, schema="trail") as audit:
            audit.uninstall(drop_data=True)


def test_a_dsn_given_opens_a_connection_closed_at_the_end_of_the_with(orders: str) -> None:
    """docs/library.md: "`Audit(dsn)` opens its own connection and closes it
    at the end of the `with` block"."""
    with Audit(orders) as audit:
        opened = audit.connection
        assert not opened.closed
        audit.install()
    assert opened.closed


def test_in_the_callers_transaction_each_method_is_a_savepoint_of_it(orders: str) -> None:
    """docs/library.md: "On a connection already in a transaction, each
    transaction of a method is a savepoint of the caller's, undone on
    failure, and commits with it": a method failing on the server undoes
    its own work only, the caller's transaction goes on with its own; one
    that succeeds is rolled back, or committed, with the caller's."""
    with Audit(orders) as audit:
        audit.install()
    with connect(orders) as conn:
        conn.execute("CREATE TABLE nokey (x int)")
    with psycopg.connect(orders) as conn, Audit(orders) as outside:
        audit = Audit(conn)
        conn.execute("INSERT INTO orders VALUES (2, 20, 'b')")
        with pytest.raises(errors.PrimaryKeyRequired):
            audit.attach("orders", "nokey")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert audit.tables() == []
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (2,)
        assert audit.attach("orders").names == ["public.orders"]
        assert [t.entity_type for t in audit.tables()] == ["public.orders"]
        conn.rollback()
        assert audit.tables() == [] and outside.tables() == []
        with connect(orders) as other:
            assert scalar(other, "SELECT count(*) FROM orders") == 1
        conn.execute("INSERT INTO orders VALUES (2, 20, 'b')")
        audit.attach("orders")
        conn.execute("UPDATE orders SET total = 21 WHERE id = 2")
        assert outside.tables() == []
        conn.commit()
        assert [t.entity_type for t in outside.tables()] == ["public.orders"]
    with connect(orders) as conn:
        assert scalar(conn, "SELECT count(*) FROM orders") == 2
        assert brief(events(conn, "public.orders")) == [("updated", "2")]


def test_typed_errors(orders: str) -> None:
    with pytest.raises(errors.ConnectionFailed):
        Audit("host=/nonexistent dbname=x")
    with Audit(orders) as audit:
        with pytest.raises(errors.NotInstalled):
            audit.status()
        with pytest.raises(errors.NotInstalled):
            audit.upgrade()
        with pytest.raises(errors.InvalidName):
            audit.install(roles=Roles(owner="bad$name"))
        audit.install()
        with pytest.raises(errors.NoSuchTable):
            audit.attach("orders", "nope")
        assert audit.tables() == []  # all or none
        with pytest.raises(errors.InvalidValue):
            audit.attach("orders", capture="bulk")


def test_verify_of_a_database_without_auditsql_reports_it(orders: str) -> None:
    with Audit(orders) as audit:
        report = audit.verify()
    assert [(r.id, r.status) for r in report.results] == [("install.present", "fail")]
    assert [r.id for r in report.failed] == ["install.present"]
    assert report.result == "fail" and report.installed_version is None


def test_report_failed_is_the_checks_that_failed(orders: str) -> None:
    """docs/library.md: a `Report`'s `failed` holds the results that failed,
    in the order run, and none that passed or warned."""
    with Audit(orders) as audit:
        audit.install()
        report = audit.verify(expect=["orders"])
    assert {r.status for r in report.results} == {"pass", "warn", "fail"}
    assert [r.id for r in report.failed] == ["tables.expected"]
    assert report.failed == [r for r in report.results if r.status == "fail"]


def test_upgrade_result_shape(orders: str) -> None:
    with Audit(orders) as audit:
        audit.install()
        done = audit.upgrade()
    assert isinstance(done, Upgrade) and done.up_to_date


def integrity_checks(audit: Audit, *digests: Digest) -> dict[str, str]:
    """The status of each integrity check of ``verify(integrity=True, digests=...)``."""
    report = audit.verify(integrity=True, digests=list(digests))
    return {r.id: r.status for r in report.results if r.id.startswith("integrity.")}


def library_seal(audit: Audit, conn: Conn, block_size: int) -> Sealed:
    """``audit.seal()`` until everything committed is sealed, the runs
    added up (sqltools.until_sealed)."""
    def once() -> tuple[int, int, int]:
        done = audit.seal(block_size=block_size)
        return done.blocks, done.events, done.sealed_to

    return Sealed(*until_sealed(scalar(conn, LAST_DRAWN_ID), once))


def test_the_library_seals_keeps_a_digest_and_verifies_the_chain_against_it(installed_db: str) -> None:
    with Audit(installed_db) as audit, connect(installed_db) as conn:
        log(conn, 25)
        top, total = conn.execute("SELECT max(id), count(*) FROM audit.events").fetchone().values()
        assert library_seal(audit, conn, block_size=10) == Sealed(blocks=3, events=total,
                                                                   sealed_to=top)
        kept = audit.digest()
        head = conn.execute("SELECT block, encode(hash, 'hex') AS hash, sealed_to, sealed_at"
                            " FROM audit.seal_head").fetchone()
        assert (kept.block, kept.hash, kept.last_id, kept.sealed_at) == tuple(head.values())
        assert kept.block == 3 and kept.last_id == top
        assert integrity_checks(audit, kept) == {"integrity.chain": "pass", "integrity.digests": "pass"}
        tamper(conn, 15, "UPDATE audit.events SET actor_id = 'x' WHERE id = 15")
        assert integrity_checks(audit, kept) == {"integrity.chain": "fail", "integrity.digests": "pass"}
        # The chain rebuilt over the edit is consistent: only the digest tells.
        unseal_everything(conn)
        library_seal(audit, conn, block_size=10)
        assert integrity_checks(audit, kept) == {"integrity.chain": "pass", "integrity.digests": "fail"}


def test_a_digest_reads_back_from_its_json_and_from_a_file(installed_db: str,
                                                          tmp_path: Path) -> None:
    """docs/library.md: `Digest.to_json()`, read back with
    `Digest.from_json()`, or written to a file and read with
    `auditsql.integrity.load_digest(path)`, is the digest it was, before
    anything is sealed and after."""
    with Audit(installed_db) as audit, connect(installed_db) as conn:
        kept = [audit.digest()]
        log(conn, 5)
        seal(conn)
        kept.append(audit.digest())
    assert [(d.block, d.sealed_at is None) for d in kept] == [(0, True), (1, False)]
    for i, digest in enumerate(kept):
        assert Digest.from_json(digest.to_json()) == digest
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(digest.to_json()), encoding="utf-8")
        assert load_digest(path) == digest
