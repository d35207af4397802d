"""`auditsql seal` and `auditsql digest`: the hash chain over the log
(docs/integrity.md). Verifying it is `auditsql verify --integrity`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from auditsql.audit import Audit
from auditsql.cli.options import Dsn, Json, Schema
from auditsql.cli.output import reported
from auditsql.integrity import DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE


def seal(
    dsn: Dsn,
    schema: Schema = "audit",
    block_size: Annotated[
        int,
        typer.Option("--block-size", metavar="N", min=1, max=MAX_BLOCK_SIZE,
                     help="Events per block at most."),
    ] = DEFAULT_BLOCK_SIZE,
    as_json: Json = False,
) -> None:
    """Seal committed events into the hash chain.

    Hashes the events committed since the last run, in id order, into
    blocks whose hashes chain. It never waits for writers nor makes them
    wait, and runs alongside other runs (they take turns). The scheduled
    job seals as well. Needs the audit administrator role.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        sealed = audit.seal(block_size)
    if as_json:
        print(json.dumps({"blocks": sealed.blocks, "events": sealed.events,
                          "sealed_to": sealed.sealed_to}, indent=2))
    else:
        print(f"sealed {sealed.events} events into {sealed.blocks} blocks; "
              f"every id up to {sealed.sealed_to} is sealed")


def digest(
    dsn: Dsn,
    schema: Schema = "audit",
) -> None:
    """Print the chain head as JSON, to keep outside the database.

    The block number, its hash, the id every event up to which is sealed,
    and when. Give kept digests to `auditsql verify --integrity --digest
    FILE` to find a chain rebuilt from scratch or cut short.
    """
    with reported(), Audit(dsn, schema=schema) as audit:
        head = audit.digest()
    print(json.dumps(head.to_json(), indent=2))
