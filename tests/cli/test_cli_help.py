"""--version, -h/--help everywhere, and help text for every command and option.
No database needed."""

from __future__ import annotations

import pytest
import typer.main

from auditsql.cli import app
from clitools import VERSION, ok, run, run_parallel, usage_error

COMMANDS = ["install", "upgrade", "attach", "detach", "status", "verify"]


def click_command():
    return typer.main.get_command(app)


def test_commands_are_the_expected_ones() -> None:
    assert list(click_command().commands) == COMMANDS


def test_version() -> None:
    res = ok("--version", subprocess_only=True)
    assert res.stdout == f"auditsql {VERSION}\n"
    assert res.stderr == ""


def test_version_matches_package() -> None:
    import auditsql

    assert auditsql.__version__ == VERSION


@pytest.mark.parametrize("prefix", [(), *((c,) for c in COMMANDS)], ids=["root", *COMMANDS])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_flags(prefix: tuple[str, ...], flag: str) -> None:
    res = ok(*prefix, flag)
    assert res.stderr == "", str(res)
    assert "Usage" in res.stdout and "auditsql" in res.stdout, str(res)
    if prefix:
        assert f"auditsql {prefix[0]}" in res.stdout
        assert "--dsn" in res.stdout and "AUDITSQL_DSN" in res.stdout


def test_help_from_the_real_process() -> None:
    for res in run_parallel([("-h",), ("attach", "--help")]):
        assert res.code == 0 and res.stderr == "", str(res)
        assert "Usage" in res.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_option(command: str) -> None:
    res = ok(command, "--help", env={"COLUMNS": "200"})
    cmd = click_command().commands[command]
    for param in cmd.params:
        for opt in param.opts:
            if opt.startswith("-"):
                assert opt in res.stdout, f"{opt} missing from `auditsql {command} --help`"
    assert "-h" in res.stdout


def test_root_help_lists_every_command() -> None:
    res = ok("--help", env={"COLUMNS": "200"})
    for command in COMMANDS:
        assert command in res.stdout
    assert "--version" in res.stdout


def test_no_arguments_shows_help() -> None:
    res = run()
    assert res.code in (0, 2), str(res)
    assert "Usage" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_command_and_option_are_usage_errors() -> None:
    usage_error(run("frobnicate"), "frobnicate")
    usage_error(run("status", "--dsn", "x", "--frobnicate"), "--frobnicate")


def test_every_command_and_option_has_help_text() -> None:
    root = click_command()
    assert (root.help or "").strip()
    for param in root.params:
        assert (getattr(param, "help", None) or "").strip(), f"root option {param.name}"
    for name, cmd in root.commands.items():
        assert (cmd.help or "").strip(), f"command {name} has no help"
        for param in cmd.params:
            assert (getattr(param, "help", None) or "").strip(), (
                f"{name}: parameter {param.name} has no help"
            )
