"""docs/architecture.md names real files, and says where every command
lives, over which method of auditsql.Audit. No database."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import typer.main

from auditsql import Audit
from auditsql.cli import app

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "architecture.md"
TEXT = PAGE.read_text(encoding="utf-8")


def commands() -> set[str]:
    """Every command by its full name ("status", "retention set", ...)."""
    found: set[str] = set()

    def walk(group: typer.core.TyperGroup, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                found.add(f"{prefix}{name}")

    walk(typer.main.get_command(app), "")  # type: ignore[arg-type]
    return found


def command_rows() -> dict[str, list[str]]:
    """The table of commands: command -> [method, python, sql]."""
    section = TEXT.split("## Where each command lives", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_path_named_exists() -> None:
    paths = set(re.findall(r"`((?:sql|auditsql|tests|docs)/[\w./*-]*)`", TEXT))
    assert paths
    for path in sorted(paths):
        if "*" in path:
            assert list(REPO.glob(path)), path
        else:
            assert (REPO / path).exists(), path


def test_every_command_has_its_row() -> None:
    assert set(command_rows()) == commands()


def test_each_row_names_a_method_of_audit_and_the_sql() -> None:
    for command, (methods, python, sql) in command_rows().items():
        assert named_methods(methods), command
        for method in named_methods(methods):
            assert callable(getattr(Audit, method)), (command, method)
        assert python.startswith("`auditsql/"), command
        assert "sql/" in sql or "pg_cron" in sql, command


def named_methods(cell: str) -> set[str]:
    """The methods a row's cell names (its options, `--x`, left out)."""
    return {name for name in re.findall(r"`([^`]+)`", cell) if not name.startswith("-")}


def command_callbacks() -> dict[str, Callable[..., object]]:
    """Every command's own function, by its full name."""
    found: dict[str, Callable[..., object]] = {}

    def walk(group: typer.core.TyperGroup, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                assert cmd.callback is not None
                found[f"{prefix}{name}"] = inspect.unwrap(cmd.callback)

    walk(typer.main.get_command(app), "")  # type: ignore[arg-type]
    return found


def methods_called(function: Callable[..., object]) -> set[str]:
    """The methods of Audit a command calls (`audit.<method>(`), in its own
    body or in the functions of auditsql.cli it calls, however deep."""
    called: set[str] = set()
    seen: set[Callable[..., object]] = set()
    todo = [function]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        source = inspect.getsource(current)
        called |= set(re.findall(r"\baudit\.(\w+)\(", source))
        for name in re.findall(r"(?<![.\w])(\w+)\(", source):  # not methods
            other = getattr(current, "__globals__", {}).get(name)
            if inspect.isfunction(other) and other.__module__.startswith("auditsql.cli"):
                todo.append(other)
    return called


def test_each_row_names_every_method_its_command_calls_and_no_other() -> None:
    """The table's methods are the command's: a command that calls a method
    the row does not name, or no longer calls one it names, fails here."""
    callbacks = command_callbacks()
    for command, (methods, _python, _sql) in command_rows().items():
        assert methods_called(callbacks[command]) == named_methods(methods), command


def test_the_views_row_names_every_view() -> None:
    row = next(line for line in TEXT.splitlines() if line.startswith("| `sql/views/` |"))
    views = {path.stem for path in (REPO / "sql" / "views").glob("*.sql")}
    assert views
    assert views <= set(re.findall(r"`(\w+)`", row))


CLI = REPO / "auditsql" / "cli"


def test_only_the_output_module_turns_typed_errors_into_exit_codes() -> None:
    """A command catches a typed error only to show more of it, then raises
    it again; output.py alone maps it to a message and an exit code."""
    for path in sorted(CLI.glob("*.py")):
        if path.name == "output.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert "exit_code_for" not in names, path.name
        for handler in (n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)):
            caught = ast.unparse(handler.type) if handler.type is not None else ""
            if "errors." in caught or "AuditsqlError" in caught:
                assert any(isinstance(n, ast.Raise) and n.exc is None
                           for n in ast.walk(handler)), f"{path.name}: except {caught}"


# A statement that changes the log: INSERT INTO, UPDATE, DELETE FROM, COPY
# ... FROM or TRUNCATE naming its table, `events` or a partition of it, as
# Python spells it (the schema a placeholder, or a name).
_WRITES_TO_LOG = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|COPY)\s+"
    r"(?:\{\}|\{\w*\}|\"?\w+\"?)\.\"?events(?:_\w+)?\"?\b"
    r"(?!.*\bTO\s+STDOUT)", re.IGNORECASE)


def test_python_never_writes_to_the_log() -> None:
    """Every event is written by SQL in the database; no module of the
    package spells a statement that writes to the log."""
    assert _WRITES_TO_LOG.search('sql.SQL("INSERT INTO {}.events (action) VALUES (%s)")')
    assert _WRITES_TO_LOG.search("DELETE FROM audit.events_2026_01 WHERE true")
    assert not _WRITES_TO_LOG.search('COPY (SELECT 1 FROM {}.events) TO STDOUT')
    for path in sorted((REPO / "auditsql").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not _WRITES_TO_LOG.search(line), f"{path.relative_to(REPO)}:{number}: {line}"


def test_the_install_script_includes_every_file_of_the_object_directories() -> None:
    """Every file of sql/setup, sql/tables, sql/views and sql/functions is
    part of the install script, included by it or by a file it includes."""
    included: set[str] = set()
    todo = ["install.sql.j2"]
    while todo:
        name = todo.pop()
        for found in re.findall(r'\{%-?\s*include\s+"([^"]+)"', (REPO / "sql" / name).read_text(
                encoding="utf-8")):
            if found not in included:
                included.add(found)
                todo.append(found)
    for directory in ("setup", "tables", "views", "functions"):
        files = {f"{directory}/{path.name}" for path in (REPO / "sql" / directory).glob("*.sql")}
        assert files
        assert files <= included, sorted(files - included)
