"""docs/integrity.md: its standalone verification script agrees with
`auditsql verify --integrity` and audit.verify_chain() on the same log,
untouched and tampered with; its CI job keeps digests and checks them."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
import yaml

from tests.docs.doctools import DSN_USER, Block, Ctx, Registered, commands, match
from tests.sql.sqltools import connect, seal

MODULE = "tests/docs/test_docs_integrity.py"
SCRIPT_MARKER = "Verify an auditsql hash chain from docs/integrity.md alone."


def block(lang: str, marker: str) -> Block:
    found, _ = match([Registered("docs/integrity.md", marker, None)], (lang,), MODULE)
    assert len(found) == 1, f"docs/integrity.md: no {lang} block with {marker!r}"
    return next(iter(found.values()))


def standalone(ctx: Ctx) -> tuple[int, list[str]]:
    """The script, as an auditor would run it: a file of its own."""
    path = ctx.workdir / "verify_chain.py"
    path.write_text(block("python", SCRIPT_MARKER).text, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(path), ctx.dsn], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def in_sql(ctx: Ctx) -> list[str]:
    """audit.verify_chain()'s findings, printed as the script prints them."""
    with psycopg.connect(ctx.dsn) as conn:
        rows = conn.execute("SELECT block, kind, ids FROM audit.verify_chain()"
                            " ORDER BY block, kind").fetchall()
    lines = [f"block {b}: {k}" + (f" ids {','.join(map(str, ids))}" if ids else "")
             for b, k, ids in rows]
    return lines or ["ok"]


def cli(ctx: Ctx) -> tuple[int, str]:
    res = ctx.cli("verify", "--integrity", "--json")
    chain = next(c for c in json.loads(res.stdout)["checks"] if c["id"] == "integrity.chain")
    return res.code, chain["status"]


def superuser(ctx: Ctx, *statements: str) -> None:
    """As a superuser, with the guards lifted and the event triggers quiet."""
    guards = ["audit.events", "audit.seal_blocks", "audit.seal_head"]
    with psycopg.connect(ctx.pg.dsn(ctx.dbname)) as conn:
        conn.execute("SET LOCAL auditsql.permit_ddl = on")
        guards += [r[0] for r in conn.execute(
            "SELECT p.partition::text FROM audit.event_partitions() AS p").fetchall()]
        for table in guards:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER auditsql_guard_statement")
        conn.execute("ALTER TABLE audit.events DISABLE TRIGGER auditsql_guard_row")
        for statement in statements:
            conn.execute(statement)
        for table in guards:
            conn.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER auditsql_guard_statement")
        conn.execute("ALTER TABLE audit.events ENABLE ALWAYS TRIGGER auditsql_guard_row")


def seal_committed(ctx: Ctx, block_size: int) -> None:
    """Seal everything committed, in blocks of ``block_size``, however
    often another transaction of the cluster holds one run's bound back."""
    with connect(ctx.dsn_for(DSN_USER)) as conn:
        seal(conn, block_size)


@pytest.fixture
def sealed(ctx: Ctx) -> Ctx:
    ctx.execute("CREATE TABLE orders (id bigint PRIMARY KEY, note text)")
    ctx.step("auditsql install")
    ctx.step("auditsql attach orders")
    ctx.execute("INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 40) AS g")
    ctx.execute("UPDATE orders SET note = NULL WHERE id % 3 = 0")
    ctx.execute("SELECT audit.log_event('login', 'user', '7', '{\"ip\": \"1\"}')")
    ctx.execute("SELECT audit.erase('public.orders', '5', NULL, 'asked')")
    seal_committed(ctx, 7)
    ctx.execute("SELECT audit.erase('public.orders', '6', NULL, 'asked')")
    ctx.execute("INSERT INTO orders VALUES (41, 'late')")
    seal_committed(ctx, 7)
    return ctx


@pytest.mark.parametrize("tampering", [
    (),
    ("UPDATE audit.events SET actor_id = 'mallory' WHERE id = 9",),
    ("UPDATE audit.events SET occurred_at = occurred_at + interval '1 microsecond' WHERE id = 3",),
    ("DELETE FROM audit.events WHERE id IN (12, 30)",),
    ("INSERT INTO audit.events (id, category, action) VALUES (20, 'app', 'forged')",),
    ("UPDATE audit.events SET id = CASE id WHEN 15 THEN 16 ELSE 15 END WHERE id IN (15, 16)",),
    # The first byte's bits flipped: set to a constant, one run in 256 it
    # was that constant already, and nothing changed.
    ("UPDATE audit.seal_blocks SET hashes = set_byte(hashes, 0, 255 - get_byte(hashes, 0))"
     " WHERE block = 3",),
    ("DELETE FROM audit.seal_blocks WHERE block = 3",),
    ("DELETE FROM audit.seal_blocks WHERE block = 1",),
    ("DELETE FROM audit.seal_blocks WHERE block >= (SELECT block - 1 FROM audit.seal_head)",),
    ("DELETE FROM audit.seal_blocks WHERE block = 3",
     "DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events ORDER BY id OFFSET 14 LIMIT 7)"),
    ("UPDATE audit.seal_head SET hash = sha256(hash)",),
], ids=["untouched", "edited", "edited-time", "deleted", "inserted", "reordered", "altered",
        "block-gone", "first-block-gone", "last-blocks-gone", "block-and-events-gone", "head-altered"])
def test_the_script_agrees_with_verify(sealed: Ctx, tampering: tuple[str, ...]) -> None:
    superuser(sealed, *tampering)
    code, lines = standalone(sealed)
    assert lines == in_sql(sealed)
    assert (code == 0) == (lines == ["ok"]) == (not tampering)
    cli_code, status = cli(sealed)
    assert (cli_code, status) == ((0, "pass") if code == 0 else (1, "fail"))


def test_the_ci_job_keeps_digests_and_checks_them(sealed: Ctx) -> None:
    job = yaml.safe_load(block("yaml", "audit-digests").text)["jobs"]["digests"]
    assert "AUDITSQL_DSN" in job["env"]
    sealed.cli("digest")  # the first digest, as the page says to make once
    (sealed.workdir / "head.json").write_text(sealed.cli("digest").stdout, encoding="utf-8")
    ran = []
    for step in job["steps"]:
        run = step.get("run", "")
        if not run.startswith("auditsql"):
            continue
        for cmd in commands(Block("docs/integrity.md", 0, "sh", run)):
            res = sealed.cli(*cmd.argv[1:])
            assert res.code == 0, str(res)
            if cmd.stdout_to:
                (sealed.workdir / cmd.stdout_to).write_text(res.stdout, encoding="utf-8")
            ran.append(cmd.argv[1])
    assert ran == ["seal", "verify", "digest"]
    kept = json.loads((sealed.workdir / "head.json").read_text(encoding="utf-8"))
    assert kept["block"] > 0 and len(kept["hash"]) == 64
