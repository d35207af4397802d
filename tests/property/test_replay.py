"""The replay oracle: for random concurrent workloads, replaying the committed
audit events in id order rebuilds every audited table exactly.

Each example creates fresh tables (awkward names, varied column types, a
generated and a dropped column, a composite and deferrable key, a table
without a primary key, a two-level partitioned table with a partition created
after attach), attaches them, runs several sessions of transactions at once
under every isolation level (some rolled back, some with savepoints rolled
back), then checks every event's format and provenance and rebuilds each table
from its events. An error fails the example unless the workload provoked it
on its own tables (tests/property/provenance.py). Scripted cases cover what
random workloads reach rarely, and what the README says is not carried
exactly (values jsonb cannot hold, a TRUNCATE of a partition created after
attach) is checked to be logged exactly as it says.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import psycopg.rows
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from auditsql import installer
from auditsql.render import Settings
from tests.property.provenance import (
    TXN_FATAL,
    Provenance,
    provenance,
    why_not_the_workloads,
)

AUDIT = Settings()
DATA_ACTIONS = ("created", "updated", "deleted", "truncated")
ISOLATION_LEVELS = ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
SEED_TAG = "seed"
SCRIPTED_TAG = "scripted"
MAX_IDENT_BYTES = 63
RESERVED_SCHEMAS = {"replay", "audit", "public", "information_schema"}
SYSTEM_COLUMNS = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid"}

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


# --------------------------------------------------------------------------
# Quoting
# --------------------------------------------------------------------------


def ident(*names: str) -> str:
    """Quote and join identifiers: ``ident("s", "t")`` is ``"s"."t"``."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


def quote(text: str) -> str:
    """A standard-conforming string literal."""
    return "'" + text.replace("'", "''") + "'"


def pad(prefix: str, size: int = MAX_IDENT_BYTES) -> str:
    """``prefix`` padded with ``_`` to exactly ``size`` UTF-8 bytes."""
    return prefix + "_" * (size - len(prefix.encode()))


# --------------------------------------------------------------------------
# Table shapes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column: its SQL type and the family of values written to it."""

    name: str
    type: str
    kind: str
    default: str = ""

    @property
    def assignable(self) -> bool:
        """Written by INSERT and UPDATE (not generated, not the row id)."""
        return self.kind not in ("generated", "rid")


@dataclass(frozen=True)
class Target:
    """A relation written to: the table or one of its partitions, with the
    key values that route to it."""

    name: str
    domains: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    truncatable: bool = True


@dataclass(frozen=True)
class Table:
    """An audited table and how to create it."""

    label: str
    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    constraint: str
    primary_key: bool = True
    upsert: bool = True
    partition_by: str = ""
    partition_keys: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    late_partitions: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()
    dropped: tuple[Column, ...] = ()
    entity_type: str = ""

    @property
    def qualified(self) -> str:
        return ident(self.schema, self.name)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def insert_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.assignable)

    @property
    def value_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.insert_columns if c.name not in self.key)

    @property
    def rid(self) -> str:
        return next(c.name for c in self.columns if c.kind == "rid")

    def truncatable(self, target: str | None) -> bool:
        return all(t.truncatable for t in self.targets if t.name == target)

    def relation(self, target: str | None) -> str:
        return ident(self.schema, target) if target else self.qualified

    def domain(self, target: str | None, column: Column) -> st.SearchStrategy[Any]:
        """Values of a key column that route to ``target``."""
        for tgt in self.targets:
            if tgt.name == target:
                for name, values in tgt.domains:
                    if name == column.name:
                        return st.sampled_from(values)
        return VALUES[column.kind]

    def create_sql(self) -> list[str]:
        cols = [column_sql(c) for c in (*self.columns, *self.dropped)] + [self.constraint]
        create = f"CREATE TABLE {self.qualified} ({', '.join(cols)}){self.partition_by}"
        return [create, *self.partitions]

    def after_attach_sql(self) -> list[str]:
        """Drop the ``dropped`` columns, leaving holes in the row layout, and
        create the partitions that come after attach."""
        drops = [f"ALTER TABLE {self.qualified} DROP COLUMN {ident(c.name)}" for c in self.dropped]
        return [*drops, *self.late_partitions]


def column_sql(col: Column) -> str:
    """The column definition of ``col``."""
    return f"{ident(col.name)} {col.type}{col.default}"


@dataclass(frozen=True)
class Names:
    """Every name a schema of test tables uses."""

    schema: str
    enum: str
    labels: tuple[str, ...]
    sequence: str
    main: str
    main_cols: tuple[str, ...]
    comp: str
    comp_cols: tuple[str, ...]
    nopk: str
    nopk_cols: tuple[str, ...]
    part: str
    part_cols: tuple[str, ...]
    partitions: tuple[str, ...]


REGIONS = ("north", "nörd", "south", "we'st", "east")
KEY_TEXTS = ("a", "A", "ä", "a b", "'", '"', "\\", "", "NULL", "ключ")

AWKWARD = Names(
    schema='Ünï "schema" select',
    enum="mood 'enum'",
    labels=("sad", "ok", "Happy Day", "it's", 'say "hi"', "back\\slash", "ünï"),
    sequence="rid seq",
    main=pad('Tâble "main" ✓ '),
    main_cols=("user", "Rid", "select", "Numeric Value", 'json"b', "int[]", "text[] 'arr'",
               "bytes\\", "mood", "⏰ when", "from", pad("generated ✓ "), "to be dropped"),
    comp="select",
    comp_cols=("Key One", "order", "rid", "value", "AMOUNT", "Ratio ½"),
    nopk="no primary key",
    nopk_cols=("A", "b ", "rid", "document", "when", "true", "interval"),
    part="Parted 'table' ü",
    part_cols=("ID", "région", "rid", "payload", "amount", "tags"),
    partitions=('part "north"', "south", "south low", 'South "hi"', pad("défaut ")),
)


def build_tables(n: Names) -> tuple[Table, ...]:
    """The four audited tables of one example, named by ``n``."""
    s = n.schema
    enum = ident(s, n.enum)
    rid_default = f" NOT NULL DEFAULT nextval({quote(ident(s, n.sequence))}::regclass)"
    m = n.main_cols
    main = Table(
        "main", s, n.main,
        (Column(m[0], "integer", "kint"),
         Column(m[1], "bigint", "rid", " GENERATED BY DEFAULT AS IDENTITY"),
         Column(m[2], "text", "text"),
         Column(m[3], "numeric", "numeric"),
         Column(m[4], "jsonb", "jsonb"),
         Column(m[5], "integer[]", "int[]"),
         Column(m[6], "text[]", "text[]"),
         Column(m[7], "bytea", "bytea"),
         Column(m[8], enum, "enum"),
         Column(m[9], "timestamptz", "timestamptz"),
         Column(m[10], "boolean", "bool"),
         Column(m[11], "numeric", "generated", f" GENERATED ALWAYS AS ({ident(m[3])} * 2) STORED")),
        (m[0],), f"PRIMARY KEY ({ident(m[0])})",
        dropped=(Column(m[12], "integer", "int"),),
    )
    c = n.comp_cols
    comp = Table(
        "comp", s, n.comp,
        (Column(c[0], "text", "ktext"),
         Column(c[1], "integer", "kint"),
         Column(c[2], "bigint", "rid", rid_default),
         Column(c[3], "text", "text"),
         Column(c[4], "numeric", "numeric"),
         Column(c[5], "double precision", "float8")),
        (c[1], c[0]),
        f"PRIMARY KEY ({ident(c[1])}, {ident(c[0])}) DEFERRABLE INITIALLY IMMEDIATE",
        upsert=False,
    )
    k = n.nopk_cols
    nopk = Table(
        "nopk", s, n.nopk,
        (Column(k[0], "integer", "kint", " NOT NULL"),
         Column(k[1], "text", "ktext", " NOT NULL"),
         Column(k[2], "bigint", "rid", rid_default),
         Column(k[3], "jsonb", "jsonb"),
         Column(k[4], "timestamptz", "timestamptz"),
         Column(k[5], "boolean", "bool"),
         Column(k[6], "interval", "interval")),
        (k[1], k[0]), f"UNIQUE ({ident(k[0])}, {ident(k[1])})", primary_key=False,
    )
    return main, comp, nopk, partitioned_table(n, rid_default)


def partitioned_table(n: Names, rid_default: str) -> Table:
    """List-partitioned by region; one region is range-partitioned by id.
    One partition is created after attach: a TRUNCATE of it alone is only
    recorded once attach runs again, so the workload truncates it only
    through the partitioned table."""
    s, p, (north, south, south_lo, south_hi, default) = n.schema, n.part_cols, n.partitions
    root = ident(s, n.part)
    late = f"CREATE TABLE {ident(s, north)} PARTITION OF {root} FOR VALUES IN ('north', 'nörd')"
    partitions = (
        f"CREATE TABLE {ident(s, south)} PARTITION OF {root} FOR VALUES IN ('south')"
        f" PARTITION BY RANGE ({ident(p[0])})",
        f"CREATE TABLE {ident(s, south_lo)} PARTITION OF {ident(s, south)}"
        " FOR VALUES FROM (MINVALUE) TO (5)",
        f"CREATE TABLE {ident(s, south_hi)} PARTITION OF {ident(s, south)}"
        " FOR VALUES FROM (5) TO (MAXVALUE)",
        f"CREATE TABLE {ident(s, default)} PARTITION OF {root} DEFAULT",
    )
    targets = (
        Target(north, ((p[1], ("north", "nörd")),), truncatable=False),
        Target(south, ((p[1], ("south",)),)),
        Target(south_lo, ((p[1], ("south",)), (p[0], tuple(range(-1, 5))))),
        Target(default, ((p[1], ("we'st", "east")),)),
    )
    return Table(
        "part", s, n.part,
        (Column(p[0], "integer", "kint"),
         Column(p[1], "text", "region"),
         Column(p[2], "bigint", "rid", rid_default),
         Column(p[3], "text", "text"),
         Column(p[4], "numeric", "numeric"),
         Column(p[5], "text[]", "text[]")),
        (p[0], p[1]), f"PRIMARY KEY ({ident(p[0])}, {ident(p[1])})",
        partition_by=f" PARTITION BY LIST ({ident(p[1])})", partition_keys=(p[1], p[0]),
        partitions=partitions, late_partitions=(late,), targets=targets,
    )


def schema_sql(n: Names, tables: Sequence[Table]) -> list[str]:
    """Drop and recreate the example's schema and tables."""
    labels = ", ".join(quote(label) for label in n.labels)
    statements = [
        f"DROP SCHEMA IF EXISTS {ident(n.schema)} CASCADE",
        f"CREATE SCHEMA {ident(n.schema)}",
        f"CREATE TYPE {ident(n.schema, n.enum)} AS ENUM ({labels})",
        f"CREATE SEQUENCE {ident(n.schema, n.sequence)}",
    ]
    for table in tables:
        statements.extend(table.create_sql())
    return statements


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A JSON number kept as written (``1.10`` stays ``1.10``)."""

    text: str


JsonValue = None | bool | int | Num | str | list["JsonValue"] | dict[str, "JsonValue"]

TEXT_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
LONG_TEXT = "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(1500))
TRICKY_TEXTS = ("", " ", "'", "''", '"', "\\", "\\'", "NULL", "null", "{}", "{a,b}", "a,b",
                "\t\n", "ünï©ødé", "😀", "$$", "%s", "%", "\\x00", LONG_TEXT)
TIMESTAMPS = ("infinity", "-infinity", "epoch", "0044-03-15 12:00:00.5 BC",
              "1999-12-31 23:59:59.999999+14", "2000-01-01 00:00:00-12")
NUMERICS = ("1.0", "1.00", "0", "0.000", "-0.0", "NaN", "Infinity", "-Infinity", "1e-20",
            "12345678901234567890.123456789")


def scaled(unscaled: int, scale: int) -> str:
    """``unscaled * 10**-scale`` written with exactly ``scale`` digits."""
    return str(Decimal(unscaled).scaleb(-scale))


def timestamp_text(moment: datetime, offset: str, bc: bool) -> str:
    """A timestamptz literal, possibly BC (where leap years fall elsewhere)."""
    text = moment.isoformat(sep=" ") + offset
    leap_day = (moment.month, moment.day) == (2, 29)
    return text + " BC" if bc and moment.year <= 4000 and not leap_day else text


def json_text(value: JsonValue) -> str:
    """JSON text of ``value``; numbers are written as given."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Num):
        return value.text
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return "{" + ", ".join(f"{json_string(k)}: {json_text(v)}" for k, v in value.items()) + "}"


def json_string(text: str) -> str:
    """A JSON string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if ord(c) >= 0x20 else f"\\u{ord(c):04x}" for c in escaped) + '"'


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


texts = st.one_of(st.sampled_from(TRICKY_TEXTS), st.text(TEXT_CHARS, max_size=12))
numerics = st.one_of(
    st.builds(scaled, st.integers(-10**6, 10**6), st.integers(0, 5)),
    st.sampled_from(NUMERICS),
)
json_numbers = st.one_of(
    st.builds(Num, st.builds(scaled, st.integers(-10**4, 10**4), st.integers(0, 4))),
    st.sampled_from([Num("1e3"), Num("-0"), Num("1.5E-7"), Num("0.10")]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), json_numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)
timestamps = st.one_of(
    st.sampled_from(TIMESTAMPS),
    st.builds(timestamp_text,
              st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
              st.sampled_from(["", "+00", "-03:30", "+05:45", "+14", "-12"]),
              st.booleans()),
)
int_arrays = st.one_of(
    st.lists(nullable(st.integers(-2**31, 2**31 - 1)), max_size=4),
    st.lists(st.lists(st.integers(-9, 9), min_size=2, max_size=2), min_size=1, max_size=2),
)

floats = st.floats().filter(lambda f: not (f == 0 and str(f).startswith("-")))


def interval_text(months: int, days: int, micros: int) -> str:
    """An interval literal with each field given separately."""
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 10**6)
    return f"{months} mons {days} days {sign}{seconds}.{fraction:06d} seconds"


intervals = st.builds(interval_text, st.integers(-1200, 1200), st.integers(-400, 400),
                      st.integers(-10**11, 10**11))

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "kint": st.integers(-1, 6),
    "ktext": st.sampled_from(KEY_TEXTS),
    "region": st.sampled_from(REGIONS),
    "int": nullable(st.integers(-2**31, 2**31 - 1)),
    "text": nullable(texts),
    "numeric": nullable(numerics),
    "jsonb": nullable(json_values.filter(lambda v: v is not None).map(json_text)),
    "int[]": nullable(int_arrays),
    "text[]": nullable(st.lists(nullable(texts), max_size=3)),
    "bytea": nullable(st.binary(max_size=8)),
    "timestamptz": nullable(timestamps),
    "bool": nullable(st.booleans()),
    "float8": nullable(floats),
    "interval": nullable(intervals),
}


def enum_values(labels: Sequence[str]) -> st.SearchStrategy[Any]:
    return nullable(st.sampled_from(labels))


def literal(col: Column, value: Any) -> str:
    """SQL for ``value`` as a value of ``col``'s type."""
    if value is None:
        return f"NULL::{col.type}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{quote(float_text(value))}::{col.type}"
    if isinstance(value, int):
        return f"{value}::{col.type}"
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, list):
        return f"{array_literal(value)}::{col.type}"
    return f"{quote(value)}::{col.type}"


def float_text(value: float) -> str:
    """float8 input text that reads back as exactly ``value``."""
    special = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    return special.get(repr(value), repr(value))


def array_literal(items: list[Any]) -> str:
    """An ARRAY[...] constructor (``'{}'`` when empty)."""
    if not items:
        return "'{}'"
    return "ARRAY[" + ", ".join(element_literal(i) for i in items) + "]"


def element_literal(item: Any) -> str:
    if item is None:
        return "NULL"
    if isinstance(item, list):
        return "[" + ", ".join(element_literal(i) for i in item) + "]"
    if isinstance(item, int):
        return str(item)
    return quote(item)


# --------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """Rows where each column lies in [low, high] (all rows when empty)."""

    ranges: tuple[tuple[str, Any, Any], ...] = ()


@dataclass(frozen=True)
class Insert:
    table: str
    via: str | None
    rows: tuple[tuple[Any, ...], ...]
    conflict: str = ""


@dataclass(frozen=True)
class Update:
    table: str
    via: str | None
    where: Where
    assign: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Rewrite:
    """``SET column = template(column)``: a no-op, a numeric rescale, a key shift."""

    table: str
    via: str | None
    where: Where
    column: str
    template: str


@dataclass(frozen=True)
class Delete:
    table: str
    via: str | None
    where: Where


@dataclass(frozen=True)
class Truncate:
    table: str
    via: str | None


Op = Insert | Update | Rewrite | Delete | Truncate


@dataclass(frozen=True)
class Step:
    op: Op
    undo: bool = False


@dataclass(frozen=True)
class Txn:
    steps: tuple[Step, ...]
    isolation: str = "READ COMMITTED"
    commit: bool = True


@dataclass(frozen=True)
class Session:
    timezone: str
    bytea_output: str
    txns: tuple[Txn, ...]


def where_sql(table: Table, where: Where) -> str:
    conds = []
    for name, low, high in where.ranges:
        col = table.column(name)
        if low == high:
            conds.append(f"{ident(name)} = {literal(col, low)}")
        else:
            conds.append(f"{ident(name)} BETWEEN {literal(col, low)} AND {literal(col, high)}")
    return " WHERE " + " AND ".join(conds) if conds else ""


def render(tables: dict[str, Table], op: Op) -> str:
    """The SQL statement of ``op``."""
    table = tables[op.table]
    rel = table.relation(op.via)
    if isinstance(op, Insert):
        cols = table.insert_columns
        rows = ", ".join(row_sql(cols, row) for row in op.rows)
        names = ", ".join(ident(c.name) for c in cols)
        return f"INSERT INTO {rel} ({names}) VALUES {rows}{conflict_sql(table, op.conflict)}"
    if isinstance(op, Update):
        sets = ", ".join(f"{ident(n)} = {literal(table.column(n), v)}" for n, v in op.assign)
        return f"UPDATE {rel} SET {sets}{where_sql(table, op.where)}"
    if isinstance(op, Rewrite):
        expr = op.template.format(ident(op.column))
        return f"UPDATE {rel} SET {ident(op.column)} = {expr}{where_sql(table, op.where)}"
    if isinstance(op, Delete):
        return f"DELETE FROM {rel}{where_sql(table, op.where)}"
    return f"TRUNCATE {rel}"


def row_sql(cols: Sequence[Column], row: Sequence[Any]) -> str:
    """``(v1, v2, ...)`` for a VALUES list."""
    return "(" + ", ".join(literal(c, v) for c, v in zip(cols, row, strict=True)) + ")"


def conflict_sql(table: Table, conflict: str) -> str:
    if not conflict:
        return ""
    keys = ", ".join(ident(k) for k in table.key)
    if conflict == "nothing":
        return f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in table.value_columns)
    return f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def value_strategy(table: Table, via: str | None, col: Column,
                   labels: Sequence[str]) -> st.SearchStrategy[Any]:
    if col.name in table.key:
        return table.domain(via, col)
    if col.kind == "enum":
        return enum_values(labels)
    return VALUES[col.kind]


def rows(table: Table, via: str | None,
         labels: Sequence[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*(value_strategy(table, via, c, labels) for c in table.insert_columns))


def wheres(table: Table, via: str | None) -> st.SearchStrategy[Where]:
    """Whole key, one key column (a point or a range), or every row."""
    keys = [table.column(k) for k in table.key]
    whole = st.tuples(*(table.domain(via, c) for c in keys)).map(
        lambda vs: Where(tuple((c.name, v, v) for c, v in zip(keys, vs, strict=True))))
    ranged = st.sampled_from(keys).flatmap(
        lambda c: st.lists(table.domain(via, c), min_size=1, max_size=2, unique=True).map(
            lambda vs: Where(((c.name, min(vs), max(vs)),))))
    return st.one_of(whole, whole, ranged, st.just(Where()))


@st.composite
def ops(draw: st.DrawFn, tables: Sequence[Table], labels: Sequence[str]) -> Op:
    """One write to one table (or straight into one of its partitions)."""
    table = draw(st.sampled_from(tables))
    via = draw(st.one_of(st.none(), st.sampled_from([t.name for t in table.targets]))
               if table.targets else st.none())
    kinds = (["insert"] * 6 + ["update"] * 4 + ["key"] * 5 + ["rewrite"] * 3 + ["delete"] * 2
             + (["truncate"] if table.truncatable(via) else [])
             + (["move"] * 8 if table.partition_keys and via is None else []))
    kind = draw(st.sampled_from(kinds))
    label = table.label
    if kind == "insert":
        conflicts = ["", "nothing", "update"] if table.upsert else [""]
        return Insert(label, via, tuple(draw(st.lists(rows(table, via, labels), min_size=1,
                                                      max_size=3))),
                      draw(st.sampled_from(conflicts)))
    where = draw(wheres(table, via))
    if kind == "update":
        cols = draw(st.lists(st.sampled_from(table.value_columns), min_size=1, max_size=3,
                             unique=True))
        return Update(label, via, where,
                      tuple((c.name, draw(value_strategy(table, via, c, labels))) for c in cols))
    if kind == "key":
        return key_change(draw, table, via, where)
    if kind == "move":
        return move(draw, table)
    if kind == "rewrite":
        return rewrite(draw, table, via, where)
    if kind == "delete":
        return Delete(label, via, where)
    return Truncate(label, via)


def key_change(draw: st.DrawFn, table: Table, via: str | None, where: Where) -> Op:
    """Set key columns to new values, or shift an integer key column."""
    keys = [table.column(k) for k in table.key]
    ints = [c for c in keys if c.kind == "kint"]
    shift = draw(st.booleans())
    if ints and shift:
        delta = draw(st.sampled_from([-3, -1, 1, 2, 10]))
        return Rewrite(table.label, via, where, draw(st.sampled_from(ints)).name,
                       f"{{}} + {delta}")
    cols = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
    return Update(table.label, via, where,
                  tuple((c.name, draw(table.domain(via, c))) for c in cols))


def move(draw: st.DrawFn, table: Table) -> Op:
    """Set a partition key column of the rows with one key value: the rows
    change partition unless the new value routes to the same one."""
    col = table.column(draw(st.sampled_from(table.partition_keys)))
    by = table.column(draw(st.sampled_from(table.key)))
    old = draw(VALUES[by.kind])
    return Update(table.label, None, Where(((by.name, old, old),)),
                  ((col.name, draw(VALUES[col.kind])),))


def rewrite(draw: st.DrawFn, table: Table, via: str | None, where: Where) -> Op:
    """A no-op assignment, or a change of numeric scale only."""
    numerics = [c for c in table.value_columns if c.kind == "numeric"]
    rescale = draw(st.booleans())
    if numerics and rescale:
        template = draw(st.sampled_from(["round({}, 2)", "round({}, 0)", "trim_scale({})",
                                         "{} + 0.000"]))
        return Rewrite(table.label, via, where, draw(st.sampled_from(numerics)).name, template)
    col = draw(st.sampled_from(table.insert_columns))
    return Rewrite(table.label, via, where, col.name, "{}")


@st.composite
def txns(draw: st.DrawFn, tables: Sequence[Table], labels: Sequence[str]) -> Txn:
    steps = tuple(draw(st.lists(
        st.builds(Step, ops(tables, labels), st.sampled_from([False] * 5 + [True])),
        min_size=1, max_size=6)))
    isolation = draw(st.sampled_from(ISOLATION_LEVELS))
    return Txn(steps, isolation, draw(st.sampled_from([True] * 4 + [False])))


def sessions(tables: Sequence[Table], labels: Sequence[str],
             max_txns: int = 4) -> st.SearchStrategy[Session]:
    return st.builds(
        Session,
        st.sampled_from(["UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"]),
        st.sampled_from(["hex", "escape"]),
        st.lists(txns(tables, labels), min_size=1, max_size=max_txns).map(tuple),
    )


@dataclass(frozen=True)
class Workload:
    """Rows every table starts with, then sessions run at once."""

    seed: tuple[Insert, ...]
    sessions: tuple[Session, ...]
    captures: tuple[str, ...] = ()  # capture mode of each table, as attached


def seeds(table: Table, labels: Sequence[str]) -> st.SearchStrategy[Insert]:
    """Rows with distinct keys, inserted before the sessions start."""
    positions = [i for i, c in enumerate(table.insert_columns) if c.name in table.key]
    return st.lists(rows(table, None, labels), min_size=3, max_size=10,
                    unique_by=lambda row: tuple(row[i] for i in positions)).map(
        lambda found: Insert(table.label, None, tuple(found)))


def captures(table: Table) -> st.SearchStrategy[str]:
    """How a table is attached: partitioned tables are captured row by row."""
    return st.just("row") if table.partition_by else st.sampled_from(("row", "statement"))


def workloads(tables: Sequence[Table], labels: Sequence[str], n_sessions: int,
              max_txns: int) -> st.SearchStrategy[Workload]:
    return st.builds(
        Workload,
        st.tuples(*(seeds(t, labels) for t in tables)),
        st.lists(sessions(tables, labels, max_txns), min_size=n_sessions,
                 max_size=n_sessions).map(tuple),
        st.tuples(*(captures(t) for t in tables)),
    )


# --------------------------------------------------------------------------
# Running a workload
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the sessions did: committed transaction tags and a statement log."""

    committed: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, line: str, count: str | None = None) -> None:
        with self.lock:
            self.log.append(line)
            if count:
                self.counts[count] += 1


class TxnAborted(Exception):
    """The server aborted the transaction (serialization failure, deadlock)."""


class NotTheWorkloads(AssertionError):
    """A statement failed with an error the workload did not provoke."""


def judge(exc: psycopg.Error, prov: Provenance, op: Op | None, isolation: str) -> None:
    """Accept an error the workload provoked on its own tables (``op`` None:
    at COMMIT); anything else fails the test. TRUNCATE is refused outside
    READ COMMITTED."""
    why = why_not_the_workloads(
        exc, prov,
        truncate_refused=isinstance(op, Truncate) and isolation != "READ COMMITTED",
        upsert=isinstance(op, Insert) and op.conflict == "update")
    if why is not None:
        raise NotTheWorkloads(f"{why}: {exc.sqlstate} {exc}\ncontext: {exc.diag.context}") from exc


def run_step(conn: psycopg.Connection[Any], statement: str, step: Step, isolation: str,
             prov: Provenance) -> str:
    """Run one statement in a savepoint; returns what became of it."""
    conn.execute("SAVEPOINT step")
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        judge(exc, prov, step.op, isolation)
        if exc.sqlstate in TXN_FATAL:
            raise TxnAborted(exc.sqlstate) from exc
        conn.execute("ROLLBACK TO SAVEPOINT step")
        return f"failed {exc.sqlstate}"
    conn.execute("ROLLBACK TO SAVEPOINT step" if step.undo else "RELEASE SAVEPOINT step")
    return "undone" if step.undo else "ok"


def end_txn(conn: psycopg.Connection[Any], txn: Txn, prov: Provenance) -> None:
    """COMMIT or ROLLBACK; a serialization failure at COMMIT aborts it."""
    try:
        conn.execute("COMMIT" if txn.commit else "ROLLBACK")
    except psycopg.Error as exc:
        judge(exc, prov, None, txn.isolation)
        if exc.sqlstate not in TXN_FATAL:
            raise
        raise TxnAborted(exc.sqlstate) from exc


def run_txn(conn: psycopg.Connection[Any], tables: dict[str, Table], txn: Txn, tag: str,
            outcome: Outcome, prov: Provenance) -> None:
    """Run one transaction, tagged with ``tag`` as its auditsql request id."""
    conn.execute(f"BEGIN ISOLATION LEVEL {txn.isolation}")
    conn.execute(f"SELECT set_config('auditsql.request_id', {quote(tag)}, true)")
    try:
        for step in txn.steps:
            statement = render(tables, step.op)
            result = run_step(conn, statement, step, txn.isolation, prov)
            outcome.record(f"{tag}: {statement} -> {result}", f"{type(step.op).__name__} {result}")
        end_txn(conn, txn, prov)
    except TxnAborted as exc:
        conn.execute("ROLLBACK")
        outcome.record(f"{tag}: aborted ({exc})", "aborted")
        return
    if txn.commit:
        with outcome.lock:
            outcome.committed.add(tag)
    outcome.record(f"{tag}: {'COMMIT' if txn.commit else 'ROLLBACK'}",
                   "committed" if txn.commit else "rolled back")


def run_session(dsn: str, tables: dict[str, Table], session: Session, name: str,
                outcome: Outcome, start: threading.Barrier, prov: Provenance) -> None:
    """Run a session's transactions on its own connection."""
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(f"SET TimeZone = {quote(session.timezone)}")
        conn.execute(f"SET bytea_output = {quote(session.bytea_output)}")
        conn.execute("SET deadlock_timeout = '20ms'")
        conn.execute("SET lock_timeout = '60s'")
        start.wait()
        for i, txn in enumerate(session.txns):
            run_txn(conn, tables, txn, f"{name}.{i}", outcome, prov)


def run_concurrently(dsn: str, tables: Sequence[Table], workload: Sequence[Session],
                     prov: Provenance) -> Outcome:
    """Run each session in its own thread; re-raise the first failure. ``prov``
    tells the workload's errors from others."""
    by_label = {t.label: t for t in tables}
    outcome = Outcome()
    start = threading.Barrier(len(workload))
    errors: list[BaseException] = []

    def target(i: int, session: Session) -> None:
        try:
            run_session(dsn, by_label, session, f"s{i}", outcome, start, prov)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=target, args=(i, s)) for i, s in enumerate(workload)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    note("\n".join(outcome.log))
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)),
                   errors[0])
    return outcome


# --------------------------------------------------------------------------
# Setup and the oracle
# --------------------------------------------------------------------------


def create_tables(conn: psycopg.Connection[Any], names: Names, tables: Sequence[Table],
                  modes: Sequence[str] = ()) -> tuple[int, tuple[Table, ...]]:
    """Create and attach the tables (in capture ``modes``, row by default);
    returns the last event id before the workload and the tables with their
    expected entity types."""
    for statement in schema_sql(names, tables):
        conn.execute(statement)
    modes = tuple(modes) or ("row",) * len(tables)
    attached = tuple(attach_table(conn, table, mode) for table, mode in zip(tables, modes))
    return last_event_id(conn), attached


def attach_table(conn: psycopg.Connection[Any], table: Table, capture: str = "row") -> Table:
    """Attach ``table`` (by its key columns unless it has a primary key);
    returns it with its expected entity type."""
    table = replace(table, entity_type=entity_type(conn, table))
    id_columns = None if table.primary_key else list(table.key)
    assert installer.attach(conn, [table.qualified], AUDIT, id_columns=id_columns,
                            capture=capture).names == [table.entity_type]
    for statement in table.after_attach_sql():
        conn.execute(statement)
    return table


def entity_type(conn: psycopg.Connection[Any], table: Table) -> str:
    """``format('%I.%I', schema, table)``: the name events give the table."""
    row = conn.execute("SELECT format('%%I.%%I', %s::text, %s::text)",
                       (table.schema, table.name)).fetchone()
    assert row is not None
    return str(row[0])


def insert_seed(conn: psycopg.Connection[Any], tables: Sequence[Table],
                seed: Sequence[Insert]) -> None:
    """Insert the starting rows in one transaction tagged ``SEED_TAG``."""
    by_label = {t.label: t for t in tables}
    with conn.transaction():
        conn.execute(f"SELECT set_config('auditsql.request_id', {quote(SEED_TAG)}, true)")
        for insert in seed:
            conn.execute(render(by_label, insert))


def last_event_id(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM audit.events").fetchone()
    assert row is not None
    return int(row[0])


EVENT_PROBLEMS = """
SELECT id, action, problem, entity_id, previous_entity_id, changed_columns,
       before::text, after::text
FROM (
    SELECT e.*, CASE
        WHEN e.action = 'updated' AND stored.before IS DISTINCT FROM (
                 SELECT jsonb_object_agg(k, e.before -> k) FROM unnest(e.changed_columns) AS k)
            THEN 'the stored before is not the old values of the changed columns'
        WHEN (e.action = 'created') <> (e.before IS NULL AND e.after IS NOT NULL)
          OR (e.action = 'updated') <> (e.before IS NOT NULL AND e.after IS NOT NULL)
          OR (e.action IN ('deleted', 'truncated')) <> (e.before IS NOT NULL AND e.after IS NULL)
            THEN 'wrong images for the action'
        WHEN e.entity_id IS DISTINCT FROM replay.entity_id(coalesce(e.after, e.before), %(keys)s)
            THEN 'entity_id is not the key of the row'
        WHEN e.previous_entity_id IS DISTINCT FROM
             CASE WHEN e.action = 'updated'
                  THEN nullif(replay.entity_id(e.before, %(keys)s), e.entity_id) END
            THEN 'previous_entity_id is not the changed old key'
        WHEN e.changed_columns IS DISTINCT FROM
             CASE WHEN e.action = 'updated' THEN replay.changed(e.before, e.after) END
            THEN 'changed_columns are not the columns that differ'
        WHEN e.action = 'updated' AND cardinality(e.changed_columns) = 0
            THEN 'an update that changed nothing was recorded'
        WHEN e.action = 'updated' AND e.before -> %(rid)s IS DISTINCT FROM e.after -> %(rid)s
            THEN 'before and after images of different rows'
        WHEN txid_status(e.txid) IS DISTINCT FROM 'committed'
            THEN 'written by a transaction that did not commit'
        WHEN NOT (e.request_id = ANY (%(committed)s))
            THEN 'not from a committed workload transaction'
    END AS problem
    FROM audit.history AS e
    JOIN audit.events AS stored USING (id)
    WHERE e.entity_type = %(entity_type)s AND e.id > %(since)s AND e.action = ANY (%(actions)s)
) AS checked
WHERE problem IS NOT NULL
ORDER BY id
LIMIT 5
"""


def check_events(conn: psycopg.Connection[Any], table: Table, since: int,
                 committed: set[str]) -> None:
    """Every data event of ``table`` is well formed and comes from committed work."""
    problems = conn.execute(EVENT_PROBLEMS, {
        "keys": list(table.key), "rid": table.rid, "committed": sorted(committed),
        "entity_type": table.entity_type, "since": since, "actions": list(DATA_ACTIONS),
    }).fetchall()
    assert not problems, f"{table.entity_type}: bad events:\n" + "\n".join(map(repr, problems))


def check_entity_types(conn: psycopg.Connection[Any], tables: Sequence[Table], since: int) -> None:
    """Data events name only the audited tables (partitions go by their root)."""
    rows = conn.execute(
        "SELECT DISTINCT entity_type FROM audit.events WHERE id > %s AND action = ANY (%s)",
        (since, list(DATA_ACTIONS)),
    ).fetchall()
    stray = {r[0] for r in rows} - {t.entity_type for t in tables}
    assert not stray, f"events for unexpected entity types: {sorted(stray)}"


def rows_text(conn: psycopg.Connection[Any], relation: str) -> Counter[str]:
    """The rows of ``relation`` (partitions included) as text, with multiplicity."""
    return Counter(r[0] for r in conn.execute(f"SELECT ROW(t.*)::text FROM {relation} AS t"))


def shadow_table(table: Table) -> str:
    """Where ``table`` is replayed."""
    return ident("replay", f"shadow_{table.label}")


def replay(conn: psycopg.Connection[Any], table: Table,
           since: int) -> tuple[Counter[str], Counter[str]]:
    """Replay ``table``'s events into its shadow table; returns the rows of
    the table and of the replay."""
    shadow = shadow_table(table)
    conn.execute(f"DROP TABLE IF EXISTS {shadow}")
    conn.execute(f"CREATE TABLE {shadow} (LIKE {table.qualified} INCLUDING GENERATED)")
    try:
        conn.execute("SELECT replay.apply(%s, %s::regclass, %s)",
                     (table.entity_type, shadow, since))
    except psycopg.errors.RaiseException as exc:
        raise AssertionError(f"{table.entity_type}: {exc.diag.message_primary}") from None
    return rows_text(conn, table.qualified), rows_text(conn, shadow)


def check_replay(conn: psycopg.Connection[Any], table: Table, since: int) -> None:
    """Replay ``table``'s events and compare the replay with the table."""
    real, replayed = replay(conn, table, since)
    missing, extra = real - replayed, replayed - real
    assert not missing and not extra, (
        f"{table.entity_type}: replay differs from the table\n"
        f"  in the table only: {sorted(missing.elements())}\n"
        f"  in the replay only: {sorted(extra.elements())}"
    )


def check_oracle(conn: psycopg.Connection[Any], tables: Sequence[Table], since: int,
                 committed: set[str]) -> None:
    """Every oracle check: event format, provenance, and the replay itself."""
    with conn.transaction(force_rollback=True):
        check_entity_types(conn, tables, since)
        for table in tables:
            check_events(conn, table, since, committed)
            check_replay(conn, table, since)


COVERAGE_SQL = """
SELECT count(*) FILTER (WHERE action = 'created') AS created,
       count(*) FILTER (WHERE action = 'updated') AS updated,
       count(*) FILTER (WHERE action = 'updated' AND previous_entity_id IS NOT NULL)
           AS "key changed",
       count(*) FILTER (WHERE action = 'updated' AND EXISTS (
           SELECT FROM jsonb_each(after) AS a
           WHERE a.value = before -> a.key AND a.value::text <> (before -> a.key)::text))
           AS "numeric scale change",
       count(*) FILTER (WHERE action = 'deleted') AS deleted,
       count(*) FILTER (WHERE action = 'truncated') AS truncated,
       count(*) FILTER (WHERE action = 'updated' AND entity_type = %(part)s)
           AS "partitioned updated"
FROM audit.events
WHERE id > %(since)s
"""


def event_coverage(conn: psycopg.Connection[Any], tables: Sequence[Table],
                   since: int) -> Counter[str]:
    """How many events of each interesting sort the example produced."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(COVERAGE_SQL, {"part": tables[3].entity_type,
                                         "since": since}).fetchone()
    assert row is not None
    return Counter({k: int(v) for k, v in row.items()})


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def run_example(dsn: str, names: Names, workload: Workload) -> tuple[Outcome, Counter[str]]:
    """Fresh tables, the workload, then the oracle."""
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        since, tables = create_tables(conn, names, build_tables(names), workload.captures)
        insert_seed(conn, tables, workload.seed)
        prov = provenance(conn, [t.qualified for t in tables], AUDIT.schema)
        outcome = run_concurrently(dsn, tables, workload.sessions, prov)
        check_oracle(conn, tables, since, outcome.committed | {SEED_TAG})
        coverage = event_coverage(conn, tables, since)
    coverage.update(f"capture {mode}" for mode in workload.captures)
    return outcome, coverage


AWKWARD_TABLES = build_tables(AWKWARD)


@pytest.mark.slow
def test_replay_reproduces_tables_under_concurrent_workloads(audited_db: str) -> None:
    """Three sessions at once; every isolation level; awkward names throughout."""
    seen: Counter[str] = Counter()

    @settings(max_examples=100, deadline=None, suppress_health_check=HEALTH)
    @given(workload=workloads(AWKWARD_TABLES, AWKWARD.labels, n_sessions=3, max_txns=4))
    def check(workload: Workload) -> None:
        outcome, coverage = run_example(audited_db, AWKWARD, workload)
        seen.update(outcome.counts)
        seen.update(coverage)

    check()
    for what in ("committed", "rolled back", "aborted", "created", "updated", "key changed",
                 "numeric scale change", "deleted", "truncated", "partitioned updated",
                 "capture row", "capture statement"):
        assert seen[what] > 0, f"the workloads never produced {what!r}: {dict(seen)}"


def identifier_ok(name: str) -> bool:
    return len(name.encode()) <= MAX_IDENT_BYTES and name not in SYSTEM_COLUMNS


AWKWARD_IDENTIFIERS = (
    "select", "user", "Order", "a b", "a.b", 'q"uote', "back\\slash", "ünï", "%s", "%", "$1",
    "x" * 63, "é" * 31,
    # names the capture functions use for relations, columns and variables
    "t", "s", "e", "k", "o", "n", "p", "r", "j", "rn", "oj", "nj", "col", "ord", "key", "value",
    "old_id", "new_id", "auditsql_new", "auditsql_old", "auditsql_rows", "new", "old",
    "v_new", "v_old", "v_keys", "v_txid",
)

identifiers = st.one_of(
    st.sampled_from(AWKWARD_IDENTIFIERS),
    st.text(TEXT_CHARS, min_size=1, max_size=20),
).filter(identifier_ok)


def distinct_names(size: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(identifiers, min_size=size, max_size=size, unique=True).map(tuple)


@st.composite
def random_names(draw: st.DrawFn) -> Names:
    """A drawn naming scheme: relation and type names distinct within the schema."""
    relations = draw(distinct_names(11))
    return Names(
        schema=draw(identifiers.filter(lambda s: s not in RESERVED_SCHEMAS
                                       and not s.startswith("pg_"))),
        enum=relations[0], sequence=relations[1],
        labels=draw(distinct_names(3)),
        main=relations[2], main_cols=draw(distinct_names(13)),
        comp=relations[3], comp_cols=draw(distinct_names(6)),
        nopk=relations[4], nopk_cols=draw(distinct_names(7)),
        part=relations[5], part_cols=draw(distinct_names(6)),
        partitions=relations[6:11],
    )


@st.composite
def named_workloads(draw: st.DrawFn) -> tuple[Names, Workload]:
    names = draw(random_names())
    return names, draw(workloads(build_tables(names), names.labels, n_sessions=2, max_txns=2))


@pytest.mark.slow
def test_replay_with_drawn_identifiers(audited_db: str) -> None:
    """Schema, table, partition, column, type and enum label names drawn at random."""

    @settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)
    @given(case=named_workloads())
    def check(case: tuple[Names, Workload]) -> None:
        names, workload = case
        run_example(audited_db, names, workload)

    check()


# --------------------------------------------------------------------------
# Scripted cases the random workloads leave out
# --------------------------------------------------------------------------


def scripted(dsn: str,
             steps: Callable[[psycopg.Connection[Any], psycopg.Connection[Any]], None]) -> None:
    """Fresh tables, ``steps`` on two connections whose work counts as committed,
    then the oracle."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        since, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        with connections(dsn, 2) as (a, b):
            steps(a, b)
        check_oracle(conn, tables, since, {SCRIPTED_TAG})


@contextmanager
def connections(dsn: str, n: int) -> Iterator[list[psycopg.Connection[Any]]]:
    """``n`` autocommit connections whose transactions carry request id ``SCRIPTED_TAG``."""
    conns = [psycopg.connect(dsn, autocommit=True,
                             options=f"-c auditsql.request_id={SCRIPTED_TAG}")
             for _ in range(n)]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


def insert_key_sql(table: Table, *keys: tuple[Any, ...]) -> str:
    """INSERT rows giving only their key columns."""
    cols = [table.column(k) for k in table.key]
    values = ", ".join(row_sql(cols, key) for key in keys)
    return (f"INSERT INTO {table.qualified} ({', '.join(ident(c.name) for c in cols)})"
            f" VALUES {values}")


def test_truncate_in_read_committed_records_rows_committed_while_it_waited(
        audited_db: str) -> None:
    """TRUNCATE blocked behind an open insert records the row once it commits."""
    main = AWKWARD_TABLES[0]

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        b.execute("BEGIN")
        b.execute(insert_key_sql(main, (1,)))
        done = threading.Event()

        def truncate() -> None:
            a.execute(f"TRUNCATE {main.qualified}")
            done.set()

        worker = threading.Thread(target=truncate)
        worker.start()
        assert not done.wait(0.3), "TRUNCATE did not wait for the open insert"
        b.execute("COMMIT")
        worker.join()
        assert done.is_set()

    scripted(audited_db, steps)


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_truncate_after_a_concurrent_commit_outside_read_committed_is_refused(
        audited_db: str, isolation: str) -> None:
    """The snapshot cannot see the newly committed row, so TRUNCATE must not run."""
    main = AWKWARD_TABLES[0]

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        a.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        a.execute("SELECT 1")
        b.execute(insert_key_sql(main, (1,)))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            a.execute(f"TRUNCATE {main.qualified}")
        a.execute("ROLLBACK")

    scripted(audited_db, steps)


def test_partition_moves_and_writes_straight_into_partitions(audited_db: str) -> None:
    """Rows moved between partitions at both levels, and writes and TRUNCATE
    aimed at leaf and intermediate partitions, all replay."""
    part = AWKWARD_TABLES[3]
    north, south, south_lo, _, default = AWKWARD.partitions
    id_col, region = (ident(k) for k in part.key)
    payload = ident(part.value_columns[0].name)

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        a.execute(insert_key_sql(part, (1, "north"), (2, "south"), (8, "south"), (3, "east")))
        b.execute(f"INSERT INTO {ident(part.schema, south_lo)} ({id_col}, {region})"
                  " VALUES (4, 'south')")
        b.execute(f"UPDATE {ident(part.schema, north)} SET {region} = 'nörd' WHERE {id_col} = 1")
        a.execute(f"UPDATE {part.qualified} SET {region} = 'south' WHERE {id_col} = 1")
        a.execute(f"UPDATE {ident(part.schema, south)} SET {id_col} = {id_col} + 5"
                  f" WHERE {id_col} < 5")
        a.execute(f"UPDATE {part.qualified} SET {payload} = 'x', {region} = 'we''st'"
                  f" WHERE {id_col} = 7")
        b.execute(f"DELETE FROM {ident(part.schema, default)} WHERE {id_col} = 3")
        b.execute(f"TRUNCATE {ident(part.schema, south)}")

    with psycopg.connect(audited_db, autocommit=True) as conn:
        scripted(audited_db, steps)
        deleted = conn.execute(
            "SELECT count(*) FROM audit.events WHERE entity_type = %s AND action = 'deleted'",
            (entity_type(conn, part),)).fetchone()
    assert deleted == (6,), "four moves between partitions, one move back, one delete"


def truncate_late_partition(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
    """Steps: rows in the partition created after attach (and in another),
    then TRUNCATE of that partition alone, after attaching again."""
    part = AWKWARD_TABLES[3]
    a.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east")))
    installer.attach(a, [part.qualified], AUDIT)
    b.execute(f"TRUNCATE {ident(part.schema, AWKWARD.partitions[0])}")


def test_truncate_of_a_partitioned_table_records_partitions_created_after_attach(
        audited_db: str) -> None:
    part = AWKWARD_TABLES[3]

    def steps(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> None:
        a.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east"), (1, "south")))
        b.execute(f"TRUNCATE {part.qualified}")

    scripted(audited_db, steps)


def test_truncate_of_a_late_partition_alone_after_attaching_again(audited_db: str) -> None:
    scripted(audited_db, truncate_late_partition)


def table_events(conn: psycopg.Connection[Any], table: Table,
                since: int) -> list[tuple[str, str | None]]:
    """(action, entity_id) of ``table``'s events after ``since``."""
    return [(str(action), entity) for action, entity in conn.execute(
        "SELECT action, entity_id FROM audit.events WHERE entity_type = %s AND id > %s"
        " AND category = 'data' ORDER BY id", (table.entity_type, since))]


def test_truncate_of_a_late_partition_alone_is_recorded(audited_db: str) -> None:
    """README, "Partitioned tables": installed by a superuser, the event
    triggers give a partition created after attach its TRUNCATE trigger
    when it is created, so a TRUNCATE of it alone is recorded."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        part, north = tables[3], ident(AWKWARD.schema, AWKWARD.partitions[0])
        conn.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east")))
        conn.execute(f"TRUNCATE {north}")
        assert table_events(conn, part, since) == [
            ("created", '[1, "north"]'), ("created", '[2, "nörd"]'), ("created", '[1, "east"]'),
            ("truncated", '[1, "north"]'), ("truncated", '[2, "nörd"]')]
        with conn.transaction(force_rollback=True):
            real, replayed = replay(conn, part, since)
        assert real == replayed


def test_truncate_of_a_late_partition_alone_is_recorded_once_attach_runs_again(
        audited_db: str) -> None:
    """README, "Partitioned tables": where no event trigger gives a partition
    created after attach its own TRUNCATE capture (here: its trigger dropped
    quietly, as if installed without a superuser), a TRUNCATE of it alone
    leaves no events and its rows leave no trace; once attach runs again, it
    is recorded."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since, tables = create_tables(conn, AWKWARD, AWKWARD_TABLES)
        part, north = tables[3], ident(AWKWARD.schema, AWKWARD.partitions[0])
        with conn.transaction():
            conn.execute("SET LOCAL auditsql.permit_ddl = on")
            conn.execute(f"DROP TRIGGER auditsql_capture_truncate ON {north}")
        conn.execute(insert_key_sql(part, (1, "north"), (2, "nörd"), (1, "east")))
        lost = rows_text(conn, north)
        assert sum(lost.values()) == 2
        conn.execute(f"TRUNCATE {north}")
        assert table_events(conn, part, since) == [
            ("created", '[1, "north"]'), ("created", '[2, "nörd"]'), ("created", '[1, "east"]')]
        with conn.transaction(force_rollback=True):
            real, replayed = replay(conn, part, since)
        assert (real - replayed, replayed - real) == (Counter(), lost), (
            "the replay differs from the table by the truncated rows, and only by them")

        again = last_event_id(conn)
        installer.attach(conn, [part.qualified], AUDIT)
        conn.execute(insert_key_sql(part, (3, "north")))
        conn.execute(f"TRUNCATE {north}")
        assert table_events(conn, part, again) == [
            ("created", '[3, "north"]'), ("truncated", '[3, "north"]')]


@dataclass(frozen=True)
class ValueCase:
    """A value written by a session with ``setting`` applied."""

    type: str
    value: str
    setting: str = ""


VALUE_CASES = [
    pytest.param(ValueCase("jsonb", """'{"a": [1.10, null, "\\u00e9"]}'"""), id="jsonb"),
    pytest.param(ValueCase("double precision", "0.1::float8 + 0.2::float8"), id="float8"),
    pytest.param(ValueCase("interval", "'-1 days -02:03:04'"), id="interval"),
    pytest.param(ValueCase("integer[]", "'{{1,2},{3,NULL}}'"), id="int[][]"),
    pytest.param(ValueCase("double precision", "0.1::float8 + 0.2::float8",
                           "SET extra_float_digits = 0"),
                 id="float8 exact under extra_float_digits 0"),
    pytest.param(ValueCase("interval", "'-1 days -02:03:04'", "SET IntervalStyle = sql_standard"),
                 id="interval exact under sql_standard IntervalStyle"),
    pytest.param(ValueCase("bytea", "'\\x00ff'::bytea", "SET bytea_output = escape"),
                 id="bytea as hex under escape bytea_output"),
]


def value_table(conn: psycopg.Connection[Any], type_: str) -> Table:
    """values.t (id, rid, v of ``type_``), created and attached."""
    table = Table("value", "values", "t", (Column("id", "integer", "kint"),
                                           Column("rid", "bigint", "rid"),
                                           Column("v", type_, "value")),
                  ("id",), 'PRIMARY KEY ("id")')
    conn.execute(f"CREATE SCHEMA {ident(table.schema)}")
    conn.execute(table.create_sql()[0])
    return attach_table(conn, table)


@pytest.mark.parametrize("case", VALUE_CASES)
def test_row_images_carry_values_exactly(audited_db: str, case: ValueCase) -> None:
    """A row written (and then re-keyed) by a session replays to the same row."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since = last_event_id(conn)
        table = value_table(conn, case.type)
        with connections(audited_db, 1) as (writer,):
            if case.setting:
                writer.execute(case.setting)
            writer.execute(f"INSERT INTO {table.qualified} VALUES (1, 1, {case.value})")
            writer.execute(f"UPDATE {table.qualified} SET id = 2")
        check_oracle(conn, (table,), since, {SCRIPTED_TAG})


@dataclass(frozen=True)
class LossyCase:
    """A value jsonb cannot carry: ``stored`` is its text in the table,
    ``logged`` its JSON in the row images, and ``alike`` another value,
    logged the same, which is what a replay writes back."""

    type: str
    value: str
    stored: str
    logged: str
    alike: str
    replayed: str | None


LOSSY_CASES = [
    pytest.param(LossyCase("jsonb", "'null'", "null", "null", "NULL", None),
                 id="jsonb null logs as SQL NULL does"),
    pytest.param(LossyCase("json", """'{"b": 1,  "a": 2, "a": 3}'""", '{"b": 1,  "a": 2, "a": 3}',
                           '{"a": 3, "b": 1}', """'{"a": 3, "b": 1}'""", '{"a": 3, "b": 1}'),
                 id="json loses spacing, key order and duplicate keys"),
    pytest.param(LossyCase("double precision", "'-0'", "-0", "0", "0", "0"),
                 id="float8 -0 reads 0"),
    pytest.param(LossyCase("integer[]", "'[0:1]={1,2}'", "[0:1]={1,2}", "[1, 2]", "'{1,2}'",
                           "{1,2}"),
                 id="arrays lose non-default lower bounds"),
]


@pytest.mark.parametrize("case", LOSSY_CASES)
def test_row_images_carry_what_jsonb_can(audited_db: str, case: LossyCase) -> None:
    """README, "Row images are jsonb": what jsonb cannot carry is not
    carried. The value is logged exactly as ``logged``, as ``alike`` is,
    and a replay brings back ``alike``: it differs from the table in that
    row only."""
    with psycopg.connect(audited_db, autocommit=True) as conn:
        since = last_event_id(conn)
        table = value_table(conn, case.type)
        with connections(audited_db, 1) as (writer,):
            writer.execute(f"INSERT INTO {table.qualified} VALUES"
                           f" (1, 1, {case.value}), (3, 3, {case.alike})")
            writer.execute(f"UPDATE {table.qualified} SET id = id + 1")
        logged = conn.execute(
            "SELECT action, entity_id, (before -> 'v')::text, (after -> 'v')::text"
            " FROM audit.history WHERE entity_type = %s AND id > %s AND action = ANY (%s)"
            " ORDER BY entity_id::int, id",
            (table.entity_type, since, list(DATA_ACTIONS))).fetchall()
        assert logged == [
            ("created", "1", None, case.logged), ("updated", "2", case.logged, case.logged),
            ("created", "3", None, case.logged), ("updated", "4", case.logged, case.logged)]
        assert conn.execute(f"SELECT v::text FROM {table.qualified} ORDER BY id").fetchall() == [
            (case.stored,), (case.replayed,)]
        with conn.transaction(force_rollback=True):
            check_events(conn, table, since, {SCRIPTED_TAG})
            real, replayed = replay(conn, table, since)
            shadow = conn.execute(f"SELECT v::text FROM {shadow_table(table)}"
                                  " ORDER BY id").fetchall()
        assert shadow == [(case.replayed,), (case.replayed,)]
        row_2 = f"SELECT ROW(2, 1::bigint, {{}}::{case.type})::text"
        assert (real - replayed, replayed - real) == (
            Counter(r for (r,) in conn.execute(row_2.format(case.value))),
            Counter(r for (r,) in conn.execute(row_2.format(case.alike))))
