"""Helpers for the tests that run the examples of README.md and docs/*.md.

The examples are read from the Markdown itself: every fenced block, with its
file, line and language. A test module registers each block it runs under a
*marker*, a piece of text that occurs in exactly one block of that language
in that file, so that a block edited elsewhere in its text is still found,
and a block nobody registered is reported with its file and line.

The ``ctx`` fixture the test modules use is in ``tests/docs/conftest.py``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader

from tests.cli.clitools import Result, run
from tests.harness.roles import drop_role
from tests.harness.server import ROLE_PASSWORD, Server

REPO = Path(__file__).resolve().parents[2]

# Languages of fenced blocks, and what becomes of each. A block in a
# language named in neither mapping fails test_docs_blocks.py, so that an
# example in a new language cannot go unnoticed.
RUN_BY = {
    "sh": "tests/docs/test_docs_shell.py",
    "cron": "tests/docs/test_docs_shell.py",
    "yaml": "tests/docs/test_docs_shell.py (docs/ci.md's job), "
            "tests/docs/test_docs_integrity.py (docs/integrity.md's)",
    "sql": "tests/docs/test_docs_sql.py",
}
NOT_RUN = {
    "text": "program output and generated reference, checked where it is made "
            "(docs/cli.md by tests/unit/test_cli_docs.py, verify output by "
            "tests/docs/test_docs_verify.py)",
    "json": "report examples, checked by tests/docs/test_docs_verify.py",
    "python": "library calls inside an application (a request object, a connection); "
              "the same calls are tested in tests/sql/test_context.py (audit_context) and "
              "tests/sql/test_log_event.py (log_event), and the framework integrations of "
              "docs/integrations/ in real apps in tests/integrations/; docs/library.md's "
              "blocks are run by tests/docs/test_docs_library.py, docs/integrity.md's script "
              "by tests/docs/test_docs_integrity.py",
    "ts": "TypeScript in an application (docs/integrations/typescript.md); the SQL it "
          "sends is the ```sql block beside it, run by tests/docs/test_docs_sql.py",
    "": "unlabelled blocks: formulas and figures",
}


def doc_files() -> list[Path]:
    """README.md and every page under docs/ and docs/integrations/."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
            *sorted((REPO / "docs" / "integrations").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    path: str  # relative to the repository
    line: int  # of the opening fence, from 1
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number in the file, text) of each line of the block."""
        for offset, text in enumerate(self.text.splitlines(), start=1):
            yield self.line + offset, text


_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


def blocks(paths: Iterable[Path] | None = None) -> list[Block]:
    """Every fenced block of the documentation, in file and line order."""
    found: list[Block] = []
    for path in doc_files() if paths is None else paths:
        rel = str(path.relative_to(REPO))
        opened: tuple[int, str] | None = None
        body: list[str] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if opened is None:
                match = _FENCE.match(line)
                if match:
                    opened, body = (number, match["lang"]), []
            elif line.rstrip() == "```":
                found.append(Block(rel, opened[0], opened[1], "\n".join(body) + "\n"))
                opened = None
            else:
                body.append(line)
        if opened is not None:
            raise ValueError(f"{rel}:{opened[0]}: a fenced block is never closed")
    return found


# --------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A block a test module runs: the file, a marker that occurs in that
    block alone, and what the module needs to know to run it."""

    path: str
    marker: str
    spec: T

    @property
    def id(self) -> str:
        return f"{self.path}:{self.marker[:40]}"


def match(registry: Sequence[Registered[T]], langs: Iterable[str],
          module: str) -> tuple[dict[str, Block], list[str]]:
    """The block each registration names (by ``id``), and the problems: a
    block of these languages nobody registered, a marker found in no block
    or in several."""
    langs = set(langs)
    candidates = [b for b in blocks() if b.lang in langs]
    found: dict[str, Block] = {}
    problems: list[str] = []
    for entry in registry:
        hits = [b for b in candidates if b.path == entry.path and entry.marker in b.text]
        whole = [b for b in hits if b.text.strip() == entry.marker.strip()]
        hits = whole or hits  # a marker that is a whole block names that block
        if not hits:
            problems.append(f"{entry.path}: no {'/'.join(sorted(langs))} block contains "
                            f"{entry.marker!r} (registered in {module}); update the marker")
        elif len(hits) > 1:
            problems.append(f"{entry.path}: {len(hits)} blocks contain {entry.marker!r} "
                            f"({', '.join(b.where for b in hits)}); use a longer marker")
        else:
            found[entry.id] = hits[0]
    claimed = {id(b) for b in found.values()}
    for block in candidates:
        if id(block) not in claimed:
            first = block.text.strip().splitlines()[0] if block.text.strip() else ""
            problems.append(f"{block.where}: ```{block.lang} block not registered in {module} "
                            f"(it starts {first!r}); register it there with its scenario")
    return found, problems


# --------------------------------------------------------------------------
# Shell commands
# --------------------------------------------------------------------------

# Variables the examples may use; each stands for the test database.
DSN_VARIABLES = ("DATABASE_URL", "AUDITSQL_DSN")


@dataclass(frozen=True)
class Command:
    """One command line of an example, as a shell would split it."""

    line: int
    argv: tuple[str, ...]
    stdout_to: str | None = None  # `> FILE` or `>> FILE`

    @property
    def text(self) -> str:
        return " ".join(self.argv)

    def startswith(self, prefix: str) -> bool:
        return self.text == prefix or self.text.startswith(prefix + " ")


def commands(block: Block) -> list[Command]:
    """The commands of a ```sh or ```cron block: comments dropped, lines
    continued with a backslash joined, a cron line's schedule left out,
    ``> FILE`` and ``2>&1`` taken apart from the arguments."""
    found: list[Command] = []
    pending: list[str] = []
    start = 0
    for number, line in block.lines():
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        words = shlex.split(" ".join(pending), comments=True)
        pending = []
        if not words:
            continue
        if block.lang == "cron":
            words = words[1:] if words[0].startswith("@") else words[5:]
        found.append(_command(start, words))
    if pending:
        raise ValueError(f"{block.where}: the last line ends with a backslash")
    return found


def _command(line: int, words: list[str]) -> Command:
    argv: list[str] = []
    stdout_to = None
    items = iter(words)
    for word in items:
        if word in (">", ">>"):
            stdout_to = next(items)
        elif word == "2>&1":
            continue
        else:
            argv.append(word)
    return Command(line, tuple(argv), stdout_to)


def expand(word: str, dsn: str) -> str:
    """A word with ``$DATABASE_URL`` and the like replaced by the test's DSN;
    any other variable is an error (the harness would not know its value)."""
    for name in DSN_VARIABLES:
        word = word.replace(f"${{{name}}}", dsn).replace(f"${name}", dsn)
    if "$" in word:
        raise ValueError(f"unknown variable in {word!r}: add it to DSN_VARIABLES or to the test")
    return word


def with_test_dsn(argv: Sequence[str], dsn: str) -> list[str]:
    """The arguments with whatever ``--dsn`` names (``...``, an example host,
    ``"$DATABASE_URL"``) replaced by the test's DSN, in place."""
    result: list[str] = []
    items = iter(argv)
    for word in items:
        if word == "--dsn":
            next(items, None)
            result += ["--dsn", dsn]
        elif word.startswith("--dsn="):
            result.append(f"--dsn={dsn}")
        else:
            result.append(expand(word, dsn))
    return result


# --------------------------------------------------------------------------
# A database to run examples in
# --------------------------------------------------------------------------

# Who runs a statement: the user of the test's DSN (the superuser unless a
# test says otherwise), a login role granted auditsql_reader, or a role of
# that exact name (``app``), created for the test if the example assumes it.
DSN_USER = "<the user of the test's DSN>"
READER = "<member of auditsql_reader>"

Step = str | Callable[["Ctx"], None]


@dataclass
class Ctx:
    """A fresh database for one example, and ways to act on it."""

    pg: Server
    dsn: str
    workdir: Path
    dbname: str
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    _roles: dict[str, str] = field(default_factory=dict)
    _conns: dict[str, psycopg.Connection[Any]] = field(default_factory=dict)

    # Running things

    def cli(self, *args: str, user: str = DSN_USER) -> Result:
        """``auditsql *args`` against this database (AUDITSQL_DSN set)."""
        return run(*args, env={"AUDITSQL_DSN": self.dsn_for(user)})

    def step(self, step: Step) -> None:
        """A setup step: an ``auditsql ...`` command line (which must
        succeed), SQL run by the DSN's user, or a function of the context."""
        if callable(step):
            step(self)
        elif step.startswith("auditsql "):
            res = self.cli(*shlex.split(step)[1:])
            assert res.code == 0 and "Traceback" not in res.stderr, f"setup step failed\n{res}"
        else:
            self.execute(step)

    def execute(self, text: str, user: str = DSN_USER) -> None:
        """Statements in one implicit transaction."""
        self.conn(user).execute(text.encode("utf-8"))

    def rows(self, query: str, user: str = DSN_USER) -> list[tuple[Any, ...]]:
        """The rows of *query*, every value as text (as psql shows it)."""
        cur = self.conn(user).execute(query.encode("utf-8"))
        return cur.fetchall() if cur.description else []

    # Connections and roles

    def conn(self, user: str = DSN_USER) -> psycopg.Connection[Any]:
        """An autocommit connection as *user* whose values all load as text,
        with the time zone UTC, so that rows read as the docs print them."""
        if user not in self._conns:
            conn = psycopg.connect(self.dsn_for(user), autocommit=True,
                                   options="-c TimeZone=UTC")
            text_loaders(conn)
            self._conns[user] = conn
        return self._conns[user]

    def dsn_for(self, user: str) -> str:
        if user == DSN_USER:
            return self.dsn
        return self.pg.dsn(self.dbname, user=self.role(user))

    def role(self, name: str) -> str:
        """The login role standing for *name*, created on first use."""
        if name not in self._roles:
            admin = self.pg.admin()
            real = name
            if name == READER:
                real = f"auditsql_docs_reader_{self.dbname[-12:]}"
            else:
                drop_role(self.pg, real)  # a role left behind by an interrupted run
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(real), sql.Literal(ROLE_PASSWORD)))
            self.cleanups.append(lambda: drop_role(self.pg, real))
            if name == READER:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(sql.SQL("GRANT auditsql_reader TO {}").format(
                        sql.Identifier(real)))
            self._roles[name] = real
        return self._roles[name]

    @property
    def cron_database(self) -> str | None:
        """pg_cron's database when the server loads it, else None."""
        row = self.pg.admin().execute(
            "SELECT current_setting('cron.database_name', true)").fetchone()
        return row[0] if row and row[0] else None

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        while self.cleanups:
            self.cleanups.pop()()


def dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def text_loaders(conn: psycopg.Connection[Any]) -> None:
    """Load every built-in type (and its array) as the text PostgreSQL sends."""
    for info in psycopg.postgres.types:
        conn.adapters.register_loader(info.oid, TextLoader)
        if info.array_oid:
            conn.adapters.register_loader(info.array_oid, TextLoader)


def with_pg_cron(ctx: Ctx) -> None:
    """Setup step: where the server loads pg_cron, its extension exists in
    its database (as docs/retention.md asks of a superuser), and the jobs
    made for this database are removed afterwards."""
    database = ctx.cron_database
    if database is None:
        return
    with ctx.pg.connect(database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")

    def unschedule() -> None:
        with ctx.pg.connect(database) as conn:
            conn.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE %s",
                         (f"auditsql:{ctx.dbname}:%",))

    ctx.cleanups.append(unschedule)


def written_by(actor: tuple[str, str, str], *statements: str) -> str:
    """Setup step: statements in one transaction, with *actor* (id, email,
    role) in its context."""
    context = sql.SQL("SELECT audit.set_actor({}, {}, {})").format(*map(sql.Literal, actor))
    return "; ".join([context.as_string(None), *statements])
