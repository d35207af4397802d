"""`auditsql seal`, `auditsql digest` and `auditsql verify --integrity
[--digest FILE]` end to end: each kind of tampering found at its block,
with and without digests; exit codes, JSON and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from tests.cli.clitools import error_line, execute, ok, run, scalar, usage_error
from tests.cli.test_verify import report, schema_validator
from tests.harness.roles import MakeRole
from tests.harness.server import Server
from tests.sql.sqltools import LAST_DRAWN_ID, until_sealed


def lifted(db: str, *statements: str) -> None:
    """Statements run as a superuser with every guard of the log and the
    chain lifted, the event triggers quiet."""
    parts = scalar(db, "SELECT array_agg(partition::text) FROM audit.event_partitions()")
    guards = ["audit.events", "audit.seal_blocks", "audit.seal_head", *parts]
    execute(db, "BEGIN; SET LOCAL auditsql.permit_ddl = on;"
            + "".join(f"ALTER TABLE {t} DISABLE TRIGGER auditsql_guard_statement;" for t in guards)
            + "ALTER TABLE audit.events DISABLE TRIGGER auditsql_guard_row;"
            + "".join(f"{s};" for s in statements)
            + "".join(f"ALTER TABLE {t} ENABLE ALWAYS TRIGGER auditsql_guard_statement;"
                      for t in guards)
            + "ALTER TABLE audit.events ENABLE ALWAYS TRIGGER auditsql_guard_row; COMMIT;")


def sealed(db: str, *args: str, dsn: str | None = None) -> int:
    """`auditsql seal --json` (as ``dsn``, else the superuser of ``db``)
    until everything committed is sealed (sqltools.until_sealed): the
    blocks made."""
    def once() -> tuple[int, int, int]:
        done = json.loads(ok("seal", "--dsn", dsn or db, "--json", *args).stdout)
        return done["blocks"], done["events"], done["sealed_to"]

    return until_sealed(scalar(db, LAST_DRAWN_ID), once)[0]


def integrity(db: str, *args: str) -> tuple[int, dict]:
    res = run("verify", "--dsn", db, "--integrity", "--json", *args)
    assert "Traceback" not in res.stderr, str(res)
    payload = json.loads(res.stdout)
    schema_validator().validate(payload)
    return res.code, {c["id"]: c for c in payload["checks"]}


@pytest.fixture
def logged(installed_db: str) -> str:
    execute(installed_db, "SELECT audit.log_event('login', 'user', g::text)"
                          " FROM generate_series(1, 25) AS g")
    assert sealed(installed_db, "--block-size", "10") == 3
    return installed_db


def digest(db: str, path: Path) -> Path:
    path.write_text(ok("digest", "--dsn", db).stdout, encoding="utf-8")
    return path


def test_seal_and_digest(logged: str) -> None:
    res = ok("seal", "--dsn", logged)
    assert res.stdout.startswith("sealed 0 events into 0 blocks; every id up to ")
    head = json.loads(ok("digest", "--dsn", logged).stdout)
    assert head["format"] == 1 and head["schema"] == "audit" and head["block"] == 3
    assert head["last_id"] == scalar(logged, "SELECT max(id) FROM audit.events")
    assert head["hash"] == scalar(logged, "SELECT encode(hash, 'hex') FROM audit.seal_blocks"
                                          " WHERE block = 3")
    code, checks = integrity(logged)
    assert code == 0
    assert checks["integrity.chain"]["status"] == "pass"
    assert "integrity.digests" not in checks
    assert "integrity.chain" not in {c["id"] for c in report(logged)["checks"]}


def test_digest_before_anything_is_sealed_is_block_0_and_serves_later(
        installed_db: str, tmp_path: Path) -> None:
    fields = {"block", "hash", "last_id", "sealed_at", "schema", "format"}
    first = json.loads(digest(installed_db, tmp_path / "0.json").read_text(encoding="utf-8"))
    assert set(first) == fields
    assert (first["block"], first["sealed_at"], first["format"]) == (0, None, 1)
    execute(installed_db, "SELECT audit.log_event('login', 'user', '1')")
    assert sealed(installed_db) == 1
    head = json.loads(ok("digest", "--dsn", installed_db).stdout)
    assert set(head) == fields and head["block"] == 1
    assert datetime.fromisoformat(head["sealed_at"]) == scalar(
        installed_db, "SELECT sealed_at FROM audit.seal_head")
    code, checks = integrity(installed_db, "--digest", str(tmp_path / "0.json"))
    assert (code, checks["integrity.digests"]["status"]) == (0, "pass")


@pytest.mark.parametrize(("statement", "block", "kind"), [
    ("UPDATE audit.events SET request_id = 'r' WHERE id = 14", 2, "edited"),
    ("DELETE FROM audit.events WHERE id = 23", 3, "deleted"),
    ("INSERT INTO audit.events (id, category, action) VALUES (5, 'app', 'forged')", 1, "inserted"),
    ("UPDATE audit.events SET id = CASE id WHEN 21 THEN 22 ELSE 21 END WHERE id IN (21, 22)",
     3, "reordered"),
])
def test_tampering_is_found_at_its_block(logged: str, statement: str, block: int,
                                         kind: str) -> None:
    lifted(logged, statement)
    code, checks = integrity(logged)
    assert code == 1
    assert checks["integrity.chain"]["status"] == "fail"
    assert checks["integrity.chain"]["message"].startswith(f"block {block} does not match: {kind}")


def test_every_finding_is_in_the_details_the_first_in_the_message(logged: str) -> None:
    lifted(logged, "UPDATE audit.events SET actor_id = 'mallory' WHERE id = 14",
           "DELETE FROM audit.events WHERE id = 23")
    code, checks = integrity(logged)
    chain = checks["integrity.chain"]
    assert (code, chain["status"]) == (1, "fail")
    assert chain["message"].startswith("block 2 does not match: edited (ids 14)")
    assert [d.split(": ")[:2] for d in chain["details"]] == [
        ["block 2", "edited ids 14"], ["block 3", "deleted ids 23"]]
    text = run("verify", "--dsn", logged, "--integrity").stdout
    assert "- block 2: edited ids 14: " in text and "- block 3: deleted ids 23: " in text


def test_a_chain_rebuilt_from_scratch_is_found_by_a_digest(logged: str, tmp_path: Path) -> None:
    kept = digest(logged, tmp_path / "head.json")
    lifted(logged, "UPDATE audit.events SET actor_id = 'mallory' WHERE id = 3",
           "DELETE FROM audit.seal_blocks", "DELETE FROM audit.seal_head",
           "INSERT INTO audit.seal_head DEFAULT VALUES")
    assert sealed(logged, "--block-size", "10") == 3
    code, checks = integrity(logged)
    assert (code, checks["integrity.chain"]["status"]) == (0, "pass")  # consistent in itself
    code, checks = integrity(logged, "--digest", str(kept))
    assert code == 1
    assert checks["integrity.digests"]["message"].startswith("block 3: rewritten")


def test_history_cut_short_is_found_by_a_digest(logged: str, tmp_path: Path) -> None:
    execute(logged, "SELECT audit.log_event('login', 'user', 'more')")
    assert sealed(logged, "--block-size", "10") == 1
    kept = digest(logged, tmp_path / "head.json")
    lifted(logged, "DELETE FROM audit.events WHERE id > 20",
           "DELETE FROM audit.seal_blocks WHERE block > 2",
           "UPDATE audit.seal_head SET (block, hash, sealed_to) ="
           " (SELECT block, hash, 20 FROM audit.seal_blocks WHERE block = 2)")
    code, checks = integrity(logged, "--digest", str(kept))
    assert code == 1
    assert checks["integrity.chain"]["status"] == "pass"
    assert checks["integrity.digests"]["message"].startswith("block 4: truncated")
    junit = tmp_path / "report.xml"
    run("verify", "--dsn", logged, "--integrity", "--digest", str(kept), "--junit", str(junit))
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["integrity.digests"].find("failure") is not None
    assert cases["integrity.chain"].find("failure") is None


def test_digests_that_match_pass(logged: str, tmp_path: Path) -> None:
    first = digest(logged, tmp_path / "1.json")
    execute(logged, "SELECT audit.log_event('login', 'user', 'more')")
    assert sealed(logged) == 1
    second = digest(logged, tmp_path / "2.json")
    code, checks = integrity(logged, "--digest", str(first), "--digest", str(second))
    assert code == 0
    assert checks["integrity.digests"]["message"] == "2 digests match the chain"


@pytest.mark.parametrize(("content", "needle"), [
    ("not json", "not JSON"),
    ('{"format": 1, "schema": "audit", "block": 1, "hash": "xyz", "last_id": 1}', "hash"),
    ('{"format": 2}', "format"),
    ('[1]', "object"),
    ('{"format": 1, "schema": "other", "block": 1, "hash": "' + "0" * 64 + '", "last_id": 1,'
     ' "sealed_at": null}', "schema 'other'"),
])
def test_a_bad_digest_is_a_usage_error(logged: str, tmp_path: Path, content: str,
                                       needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    res = run("verify", "--dsn", logged, "--integrity", "--digest", str(path))
    assert res.stdout == ""
    error_line(res, 2, needle)


def test_digest_needs_integrity(logged: str, tmp_path: Path) -> None:
    usage_error(run("verify", "--dsn", logged, "--digest", str(digest(logged, tmp_path / "h"))),
                "--digest needs --integrity")
    error_line(run("verify", "--dsn", logged, "--integrity", "--digest", str(tmp_path / "none")),
               2, "cannot read digest")


def test_seal_refuses_bad_block_sizes_and_non_admins(pg: Server, logged: str,
                                                     make_role: MakeRole) -> None:
    usage_error(run("seal", "--dsn", logged, "--block-size", "0"), "--block-size")
    role = make_role()
    execute(logged, f'GRANT auditsql_reader TO "{role}"')
    reader = pg.dsn(scalar(logged, "SELECT current_database()"), user=role)
    before = scalar(logged, "SELECT block FROM audit.seal_head")
    error_line(run("seal", "--dsn", reader), 1, "permission denied")
    assert scalar(logged, "SELECT block FROM audit.seal_head") == before
    # A reader verifies.
    assert report(reader, "--integrity")["checks"][-1]["status"] == "pass"


def test_a_member_of_the_admin_role_seals(pg: Server, logged: str, make_role: MakeRole) -> None:
    role = make_role()
    execute(logged, f'GRANT auditsql_admin TO "{role}"')
    admin = pg.dsn(scalar(logged, "SELECT current_database()"), user=role)
    execute(logged, "SELECT audit.log_event('login', 'user', 'more')")
    assert sealed(logged, dsn=admin) == 1
    assert scalar(logged, "SELECT block FROM audit.seal_head") == 4
    assert integrity(logged)[0] == 0
