"""The schema model of the replay tests: the tables an example creates, with
their columns, keys and partitions, and the names they go by (awkward ones
by default, drawn ones in test_replay_with_drawn_identifiers). Plain data
and the SQL that creates it; what is written to the tables is drawn in
strategies.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_IDENT_BYTES = 63


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


AWKWARD_TABLES = build_tables(AWKWARD)
