"""Where an error comes from: the workload's own tables, or auditsql.

The property tests let a transaction fail when the workload provoked the
failure on purpose (a duplicate key, a row outside its partition, two
sessions in each other's way) and must fail on anything else. A SQLSTATE
says what went wrong, not where: capture writing to the log can raise a
check violation or a unique violation too. So an error counts as the
workload's only if its diagnostics name one of the workload's relations, or
(for the errors that name none) if it was not raised inside a function of
the audit schemas; see ``why_not_the_workloads``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from auditsql.render import guard_schema_name

UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"  # a row outside its partition
CARDINALITY_VIOLATION = "21000"  # ON CONFLICT DO UPDATE meeting a row twice
SERIALIZATION_FAILURE = "40001"
DEADLOCK = "40P01"
TRUNCATE_REFUSED = "55000"
TRUNCATE_REFUSAL = "auditsql: TRUNCATE of audited table "
TRUNCATE_CAPTURE = "capture_truncate"
GENERATED_CAPTURE = re.compile(r"capture_[0-9]+")

# Under SERIALIZABLE, a transaction that concurrent transactions' conflicts
# have doomed fails at its next conflict check, wherever that is: when it is
# capture's write to the log (the first after a statement's own writes), the
# failure is raised inside capture but owes nothing to it. Conflicts in which
# capture's own reads or writes take part give other reason codes.
ALREADY_DOOMED = (
    "Reason code: Canceled on identification as a pivot, during conflict in checking.",
    "Reason code: Canceled on identification as a pivot, during conflict out checking.",
)

# Errors that carry the relation they concern; the others carry none.
ABOUT_A_RELATION = {UNIQUE_VIOLATION: "unique violation", CHECK_VIOLATION: "partition constraint"}
TXN_FATAL = {SERIALIZATION_FAILURE: "serialization failure", DEADLOCK: "deadlock"}

# One identifier as PostgreSQL prints it in an error context: quoted when it
# must be, with "" for a quote.
_IDENT = r'"(?:[^"]|"")*"|[^\s."(]+'
# A function frame of an error context: PL/pgSQL names the function by its
# signature, schema-qualified unless it is on the search_path; SQL functions
# by their bare name. The lines are innermost first.
_FRAME = re.compile(
    rf'^(?:PL/pgSQL function (?:(?P<schema>{_IDENT})\.)?(?P<plpgsql>{_IDENT})\('
    r'|SQL function "(?P<sql>(?:[^"]|"")*)")',
    re.MULTILINE,
)


@dataclass(frozen=True)
class Frame:
    """A function an error was raised in (or passed through)."""

    schema: str | None  # None: not qualified in the context
    name: str


@dataclass(frozen=True)
class Provenance:
    """The workload's relations and auditsql's schemas and functions."""

    relations: frozenset[tuple[str, str]]  # (schema, name): audited tables and their partitions
    audit_schemas: frozenset[str]
    audit_functions: frozenset[str]  # names of the functions in the audit schemas

    def in_audit(self, frame: Frame) -> bool:
        """The frame is a function of the audit schemas (an unqualified name
        counts when any audit function bears it)."""
        if frame.schema is not None:
            return frame.schema in self.audit_schemas
        return frame.name in self.audit_functions


def provenance(conn: psycopg.Connection[Any], tables: Sequence[str], schema: str) -> Provenance:
    """Read from the catalog the relations of ``tables`` (qualified, quoted
    names; each with every partition it has now) and the functions of the
    audit ``schema`` and of its event trigger's schema."""
    schemas = [schema, guard_schema_name(schema)]
    # pg_partition_tree() has no rows for a table that is not partitioned.
    relations = conn.execute(
        "SELECT n.nspname, c.relname"
        " FROM unnest(%s::regclass[]) AS t(relid)"
        " CROSS JOIN LATERAL (SELECT t.relid UNION SELECT relid FROM pg_partition_tree(t.relid))"
        "   AS p(relid)"
        " JOIN pg_class AS c ON c.oid = p.relid"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace",
        (list(tables),),
    ).fetchall()
    functions = conn.execute(
        "SELECT DISTINCT p.proname FROM pg_proc AS p JOIN pg_namespace AS n"
        " ON n.oid = p.pronamespace WHERE n.nspname = ANY (%s)",
        (schemas,),
    ).fetchall()
    return Provenance(frozenset((str(s), str(r)) for s, r in relations), frozenset(schemas),
                      frozenset(str(f) for (f,) in functions))


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def frames(context: str | None) -> list[Frame]:
    """The function frames of an error context, innermost first."""
    found = []
    for match in _FRAME.finditer(context or ""):
        if match["sql"] is not None:
            found.append(Frame(None, match["sql"].replace('""', '"')))
        else:
            schema = match["schema"]
            found.append(Frame(None if schema is None else _unquote(schema),
                               _unquote(match["plpgsql"])))
    return found


def why_not_the_workloads(exc: psycopg.Error, prov: Provenance, *,
                          truncate_refused: bool = False, upsert: bool = False) -> str | None:
    """None when the workload provoked ``exc`` on purpose, else why not.

    Accepted from inside an audit function: the refusal of a TRUNCATE outside
    READ COMMITTED (``truncate_refused``: the statement was one), which
    capture makes by design, and a serialization failure of a transaction
    already doomed (ALREADY_DOOMED). ``upsert``: the statement was an INSERT
    ... ON CONFLICT DO UPDATE, which fails when two of its rows meet the same
    row.
    """
    diag = exc.diag
    state = exc.sqlstate or ""
    raised_in = frames(diag.context)
    audit_frames = [f for f in raised_in if prov.in_audit(f)]
    # The refusal comes from capture_truncate, called by the table's own
    # capture function (the TRUNCATE trigger's), and from nowhere else.
    if (truncate_refused and state == TRUNCATE_REFUSED
            and raised_in == audit_frames and len(raised_in) == 2
            and raised_in[0].name == TRUNCATE_CAPTURE
            and GENERATED_CAPTURE.fullmatch(raised_in[1].name)
            and (diag.message_primary or "").startswith(TRUNCATE_REFUSAL)):
        return None
    if (state == SERIALIZATION_FAILURE and diag.message_detail in ALREADY_DOOMED
            and not diag.schema_name and not diag.table_name
            and raised_in and all(map(prov.in_audit, raised_in))):
        return None
    if diag.schema_name in prov.audit_schemas:
        return f"raised on {diag.schema_name}.{diag.table_name} (an audit table)"
    if audit_frames:
        inside = audit_frames[0]
        return f"raised inside {inside.schema or '?'}.{inside.name}(), an audit function"
    if raised_in:
        return f"raised inside {raised_in[0].name}(), which is no part of the workload"
    relation = (diag.schema_name or "", diag.table_name or "")
    if state in ABOUT_A_RELATION:
        if relation not in prov.relations:
            return f"{ABOUT_A_RELATION[state]} on {relation}, not a workload table"
        if state == UNIQUE_VIOLATION and not diag.constraint_name:
            return "a unique violation that names no constraint"
        return None
    if state in TXN_FATAL or (state == CARDINALITY_VIOLATION and upsert):
        if diag.table_name and relation not in prov.relations:
            return f"SQLSTATE {state} on {relation}, not a workload table"
        return None
    return f"SQLSTATE {state} is not an error the workload provokes"
