"""Hypothesis strategies of the replay tests: column values, writes,
transactions, sessions and whole workloads, and drawn naming schemes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from tests.property.literals import (
    Num,
    interval_text,
    json_text,
    scaled,
    timestamp_text,
)
from tests.property.model import (
    MAX_IDENT_BYTES,
    Column,
    Names,
    Table,
    build_tables,
)
from tests.property.workload import (
    Delete,
    Insert,
    Op,
    Rewrite,
    Session,
    Step,
    Truncate,
    Txn,
    Update,
    Where,
    Workload,
)

ISOLATION_LEVELS = ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
RESERVED_SCHEMAS = {"replay", "audit", "public", "information_schema"}
SYSTEM_COLUMNS = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid"}
REGIONS = ("north", "nörd", "south", "we'st", "east")
KEY_TEXTS = ("a", "A", "ä", "a b", "'", '"', "\\", "", "NULL", "ключ")

TEXT_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
LONG_TEXT = "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(1500))
TRICKY_TEXTS = ("", " ", "'", "''", '"', "\\", "\\'", "NULL", "null", "{}", "{a,b}", "a,b",
                "\t\n", "ünï©ødé", "😀", "$$", "%s", "%", "\\x00", LONG_TEXT)
TIMESTAMPS = ("infinity", "-infinity", "epoch", "0044-03-15 12:00:00.5 BC",
              "1999-12-31 23:59:59.999999+14", "2000-01-01 00:00:00-12")
NUMERICS = ("1.0", "1.00", "0", "0.000", "-0.0", "NaN", "Infinity", "-Infinity", "1e-20",
            "12345678901234567890.123456789")


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


def domain(table: Table, target: str | None, column: Column) -> st.SearchStrategy[Any]:
    """Values of a key column of ``table`` that route to ``target``."""
    for tgt in table.targets:
        if tgt.name == target:
            for name, values in tgt.domains:
                if name == column.name:
                    return st.sampled_from(values)
    return VALUES[column.kind]


def value_strategy(table: Table, via: str | None, col: Column,
                   labels: Sequence[str]) -> st.SearchStrategy[Any]:
    if col.name in table.key:
        return domain(table, via, col)
    if col.kind == "enum":
        return enum_values(labels)
    return VALUES[col.kind]


def rows(table: Table, via: str | None,
         labels: Sequence[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*(value_strategy(table, via, c, labels) for c in table.insert_columns))


def wheres(table: Table, via: str | None) -> st.SearchStrategy[Where]:
    """Whole key, one key column (a point or a range), or every row."""
    keys = [table.column(k) for k in table.key]
    whole = st.tuples(*(domain(table, via, c) for c in keys)).map(
        lambda vs: Where(tuple((c.name, v, v) for c, v in zip(keys, vs, strict=True))))
    ranged = st.sampled_from(keys).flatmap(
        lambda c: st.lists(domain(table, via, c), min_size=1, max_size=2, unique=True).map(
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
                  tuple((c.name, draw(domain(table, via, c))) for c in cols))


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
