"""--version, -h/--help everywhere, and help text for every command and option.
No database needed."""

from __future__ import annotations

import pytest
import typer.main

from auditsql.cli import app
from tests.cli.clitools import VERSION, ok, run, run_parallel, usage_error

COMMANDS = ["install", "upgrade", "attach", "detach", "snapshot", "status", "verify", "log",
            "show", "history", "diff", "export", "revert", "seal", "digest", "erase", "uninstall",
            "retention"]
RETENTION_COMMANDS = ["set", "status", "hold", "release", "schedule", "unschedule", "run"]
# Every command that runs something (groups only list their subcommands).
LEAVES = [
    *((c,) for c in COMMANDS if c != "retention"),
    *(("retention", c) for c in RETENTION_COMMANDS),
]


def click_command():
    return typer.main.get_command(app)


def command_at(path: tuple[str, ...]):
    cmd = click_command()
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def test_commands_are_the_expected_ones() -> None:
    assert list(click_command().commands) == COMMANDS
    assert list(command_at(("retention",)).commands) == RETENTION_COMMANDS


def test_version() -> None:
    res = ok("--version", subprocess_only=True)
    assert res.stdout == f"auditsql {VERSION}\n"
    assert res.stderr == ""


def test_version_matches_package() -> None:
    import auditsql

    assert auditsql.__version__ == VERSION


@pytest.mark.parametrize("prefix", [(), *LEAVES], ids=["root", *(" ".join(p) for p in LEAVES)])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_flags(prefix: tuple[str, ...], flag: str) -> None:
    res = ok(*prefix, flag)
    assert res.stderr == "", str(res)
    assert "Usage" in res.stdout and "auditsql" in res.stdout, str(res)
    if prefix:
        assert f"auditsql {' '.join(prefix)}" in res.stdout
        assert "--dsn" in res.stdout and "AUDITSQL_DSN" in res.stdout


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_takes_the_schema_from_its_option_or_the_environment(
        path: tuple[str, ...]) -> None:
    """README: "Every command takes `--dsn` (or `AUDITSQL_DSN`) and `--schema` (or
    `AUDITSQL_SCHEMA`, default `audit`): each command's help shows both,
    and the option is read from the variable when not given."""
    res = ok(*path, "--help", env={"COLUMNS": "200"})
    assert "--schema" in res.stdout and "AUDITSQL_SCHEMA" in res.stdout, str(res)
    [schema] = [p for p in command_at(path).params if "--schema" in p.opts]
    assert schema.envvar == "AUDITSQL_SCHEMA" and schema.default == "audit"
    [dsn] = [p for p in command_at(path).params if "--dsn" in p.opts]
    assert dsn.envvar == "AUDITSQL_DSN"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_group_help_lists_its_commands(flag: str) -> None:
    res = ok("retention", flag, env={"COLUMNS": "200"})
    assert res.stderr == "" and "Usage: auditsql retention" in res.stdout, str(res)
    for command in RETENTION_COMMANDS:
        assert command in res.stdout
    assert run("retention").code in (0, 2)
    assert "Usage" in run("retention").stdout + run("retention").stderr


def test_help_from_the_real_process() -> None:
    for res in run_parallel([("-h",), ("attach", "--help")]):
        assert res.code == 0 and res.stderr == "", str(res)
        assert "Usage" in res.stdout


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_help_lists_every_option(path: tuple[str, ...]) -> None:
    res = ok(*path, "--help", env={"COLUMNS": "200"})
    cmd = command_at(path)
    command = " ".join(path)
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
    usage_error(run("retention", "frobnicate"), "frobnicate")
    usage_error(run("retention", "run", "--dsn", "x", "--months-ahead", "many"), "--months-ahead")
    usage_error(run("retention", "hold", "--dsn", "x", "public.t", "1"), "--reason")


def test_every_command_and_option_has_help_text() -> None:
    root = click_command()
    assert (root.help or "").strip()
    for param in root.params:
        assert (getattr(param, "help", None) or "").strip(), f"root option {param.name}"
    for path in [*((c,) for c in COMMANDS), *LEAVES]:
        cmd, name = command_at(path), " ".join(path)
        assert (cmd.help or "").strip(), f"command {name} has no help"
        for param in cmd.params:
            assert (getattr(param, "help", None) or "").strip(), (
                f"{name}: parameter {param.name} has no help"
            )
