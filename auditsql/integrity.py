"""Tamper evidence: the hash chain over the log (``seal`` and
``verify_chain`` in SQL; docs/integrity.md). Sealing hashes committed
events into blocks; a digest is the chain head, kept outside the database;
verification recomputes the chain and compares it with earlier digests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from auditsql import catalog, db, errors

DIGEST_FORMAT = 1  # "format" in a digest; raised only on incompatible changes
DEFAULT_BLOCK_SIZE = 10_000
MAX_BLOCK_SIZE = 100_000
MAX_DIGEST_BYTES = 64 * 1024

# What verification can find, in the order the docs explain them.
KINDS = ("edited", "deleted", "inserted", "reordered", "altered", "truncated", "rewritten")

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Sealed:
    """What one sealing run did."""

    blocks: int  # blocks added to the chain
    events: int  # events they cover
    sealed_to: int  # every id up to this one is sealed, or was never committed


@dataclass(frozen=True)
class Digest:
    """The chain head: what to keep outside the database."""

    schema: str
    block: int  # 0: nothing sealed yet
    hash: str  # hex SHA-256 of that block (64 zeros before the first)
    last_id: int  # every event id up to this one is sealed or was never committed
    sealed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"format": DIGEST_FORMAT, "schema": self.schema, "block": self.block,
                "hash": self.hash, "last_id": self.last_id,
                "sealed_at": self.sealed_at.isoformat() if self.sealed_at else None}

    @classmethod
    def from_json(cls, data: Any, source: str = "digest") -> Digest:
        """A digest read back; InvalidValue naming ``source`` when it is not one."""
        def bad(why: str) -> errors.InvalidValue:
            return errors.InvalidValue(f"{source} is not an auditsql digest: {why}")

        if not isinstance(data, dict):
            raise bad("expected a JSON object")
        if data.get("format") != DIGEST_FORMAT:
            raise bad(f"format must be {DIGEST_FORMAT}")
        block, last_id, digest = data.get("block"), data.get("last_id"), data.get("hash")
        if not isinstance(block, int) or isinstance(block, bool) or block < 0:
            raise bad("block must be a whole number of 0 or more")
        if not isinstance(last_id, int) or isinstance(last_id, bool) or last_id < 0:
            raise bad("last_id must be a whole number of 0 or more")
        if not isinstance(digest, str) or not _HASH.fullmatch(digest):
            raise bad("hash must be 64 lower-case hex digits")
        schema = data.get("schema")
        if not isinstance(schema, str):
            raise bad("schema must be a string")
        at = data.get("sealed_at")
        try:
            sealed_at = datetime.fromisoformat(at) if at is not None else None
        except (TypeError, ValueError):
            raise bad("sealed_at must be an ISO 8601 time or null") from None
        return cls(schema, block, digest, last_id, sealed_at)


@dataclass(frozen=True)
class Finding:
    """One thing that does not match: the block, what kind of change, the
    event ids concerned (empty for the chain itself) and a sentence."""

    block: int
    kind: str
    ids: tuple[int, ...]
    detail: str


def load_digest(path: Path) -> Digest:
    """A digest file written by ``auditsql digest``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DIGEST_BYTES + 1)
    except OSError as exc:
        raise errors.InvalidValue(f"cannot read digest {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DIGEST_BYTES:
        raise errors.InvalidValue(f"{path} is not an auditsql digest: it is too large")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise errors.InvalidValue(f"{path} is not an auditsql digest: not JSON") from None
    return Digest.from_json(data, str(path))


def validate_block_size(block_size: int) -> None:
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise errors.InvalidValue(
            f"the block size must be between 1 and {MAX_BLOCK_SIZE} events, not {block_size}")


def seal(conn: psycopg.Connection, schema: str,
         block_size: int = DEFAULT_BLOCK_SIZE) -> Sealed:
    """Seal what is committed and can no longer change (one transaction of
    its own, so that it can seal up to the present)."""
    validate_block_size(block_size)
    with db.transaction(conn) as cur:
        catalog.require_installed(cur, schema)
        cur.execute(sql.SQL("SELECT blocks, events, sealed_to FROM {}.seal(%s)")
                    .format(sql.Identifier(schema)), (block_size,))
        row = cur.fetchone()
    assert row is not None
    return Sealed(int(row[0]), int(row[1]), int(row[2]))


def head(cur: psycopg.Cursor, schema: str) -> Digest:
    """The chain head as the database has it now."""
    cur.execute(sql.SQL("SELECT block, encode(hash, 'hex'), sealed_to, sealed_at FROM {}.seal_head")
                .format(sql.Identifier(schema)))
    row = cur.fetchone()
    if row is None:
        raise errors.DatabaseError(f"{schema}.seal_head has no row: the chain head was removed")
    return Digest(schema, int(row[0]), str(row[1]), int(row[2]), row[3])


def digest(conn: psycopg.Connection, schema: str) -> Digest:
    """The chain head, to keep outside the database."""
    with db.transaction(conn, read_only=True) as cur:
        catalog.require_installed(cur, schema)
        return head(cur, schema)


def verify_chain(cur: psycopg.Cursor, schema: str) -> list[Finding]:
    """What ``verify_chain()`` finds, by block; the server reads the log,
    a block at a time."""
    cur.execute(sql.SQL("SELECT block, kind, ids, detail FROM {}.verify_chain()"
                        " ORDER BY block, kind").format(sql.Identifier(schema)))
    return [Finding(int(b), str(k), tuple(ids or ()), str(d)) for b, k, ids, d in cur]


def compare_digests(cur: psycopg.Cursor, schema: str, digests: list[Digest]) -> list[Finding]:
    """Earlier digests against the chain: a block they name that is gone
    (truncated) or has another hash (rewritten)."""
    found: list[Finding] = []
    now = head(cur, schema)
    for kept in digests:
        if kept.schema != schema:
            raise errors.InvalidValue(
                f"a digest of schema {kept.schema!r} cannot check schema {schema!r}")
        if kept.block == 0:
            continue
        cur.execute(sql.SQL("SELECT encode(hash, 'hex') FROM {}.seal_blocks WHERE block = %s")
                    .format(sql.Identifier(schema)), (kept.block,))
        row = cur.fetchone()
        if row is None:
            found.append(Finding(kept.block, "truncated", (), (
                f"block {kept.block}, sealed up to id {kept.last_id}, is no longer in the chain "
                f"(it ends at block {now.block}): history was removed beyond what retention "
                "explains")))
        elif row[0] != kept.hash:
            found.append(Finding(kept.block, "rewritten", (), (
                f"block {kept.block} has another hash than the digest of "
                f"{kept.sealed_at.isoformat() if kept.sealed_at else 'an earlier run'} recorded: "
                "the chain was rewritten")))
    return sorted(found, key=lambda f: (f.block, f.kind))
