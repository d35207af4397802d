"""auditsql.Audit, the library face: what an application does with it, the
results it returns and the errors it raises. The CLI tests run the same
paths through the commands."""

from __future__ import annotations

import psycopg
import pytest

from auditsql import Audit, Report, RetentionStatus, Roles, Status, errors
from auditsql.catalog import AuditedTable
from auditsql.integrity import Digest, Sealed
from auditsql.installer import Tables, Upgrade

from tests.sql.sqltools import connect, events, scalar
from tests.sql.test_seal import log, tamper, unseal_everything


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
    assert report.result == "fail" and report.installed_version is None


def test_upgrade_result_shape(orders: str) -> None:
    with Audit(orders) as audit:
        audit.install()
        done = audit.upgrade()
    assert isinstance(done, Upgrade) and done.up_to_date


def integrity_checks(audit: Audit, *digests: Digest) -> dict[str, str]:
    """The status of each integrity check of ``verify(integrity=True, digests=...)``."""
    report = audit.verify(integrity=True, digests=list(digests))
    return {r.id: r.status for r in report.results if r.id.startswith("integrity.")}


def test_the_library_seals_keeps_a_digest_and_verifies_the_chain_against_it(installed_db: str) -> None:
    with Audit(installed_db) as audit, connect(installed_db) as conn:
        log(conn, 25)
        top, total = conn.execute("SELECT max(id), count(*) FROM audit.events").fetchone().values()
        assert audit.seal(block_size=10) == Sealed(blocks=3, events=total, sealed_to=top)
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
        audit.seal(block_size=10)
        assert integrity_checks(audit, kept) == {"integrity.chain": "pass", "integrity.digests": "fail"}
