"""docs/cli.md is generated from the CLI's --help and must not drift; every
command and option has help text. No database."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main

from auditsql.cli import app
from scripts import gen_cli_docs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated() -> str:
    return gen_cli_docs.generate()


def test_docs_are_up_to_date(generated: str) -> None:
    doc = gen_cli_docs.DOC
    assert doc == REPO / "docs" / "cli.md"
    assert doc.exists(), "docs/cli.md missing: run `python scripts/gen_cli_docs.py`"
    assert doc.read_text(encoding="utf-8") == generated, (
        "docs/cli.md is out of date: run `python scripts/gen_cli_docs.py`"
    )


def sections(text: str) -> dict[str, str]:
    """The help shown for each command, by its heading (``auditsql verify``)."""
    found = re.findall(r"^## `([^`]+)`\n\n```text\n(.*?)\n```$", text, re.MULTILINE | re.DOTALL)
    return dict(found)


def test_docs_show_the_boxed_help_users_see_without_colour(generated: str) -> None:
    """Rich's help, as a terminal 80 columns wide shows it: boxes, no
    control sequences, no line wider than the terminal."""
    assert "\x1b" not in generated and "\r" not in generated
    shown = sections(generated)
    assert list(shown) == ["auditsql", *(f"auditsql {name}" for name in all_commands())]
    for name, body in shown.items():
        assert body.startswith(f" Usage: {name}"), name
        assert "╭─ Options ─" in body and body.endswith("╯"), name
        assert max(len(line) for line in body.splitlines()) <= 80, name


@pytest.mark.parametrize("args", [(), ("verify",), ("retention", "set")])
def test_a_pipe_80_columns_wide_shows_the_same_help(generated: str,
                                                    args: tuple[str, ...]) -> None:
    """CI logs and `| less` show what the reference shows."""
    env = {**gen_cli_docs.help_env(), "COLUMNS": "80", "TERM": "dumb"}
    proc = subprocess.run([*gen_cli_docs.cli_command(), *args, "--help"], env=env,
                          capture_output=True, text=True, encoding="utf-8",
                          stdin=subprocess.DEVNULL, timeout=60, check=True)
    assert gen_cli_docs.plain(proc.stdout) == sections(generated)[" ".join(("auditsql", *args))]


def all_commands() -> dict[str, Any]:
    """Every command by its full name ("status", "retention set", ...), groups included."""
    found: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, cmd in group.commands.items():
            found[f"{prefix}{name}"] = cmd
            if hasattr(cmd, "commands"):  # a group
                walk(cmd, f"{prefix}{name} ")

    walk(typer.main.get_command(app), "")
    return found


def test_docs_cover_every_command_and_option(generated: str) -> None:
    assert "## `auditsql`" in generated
    for name, cmd in all_commands().items():
        assert f"## `auditsql {name}`" in generated
        body = generated.split(f"## `auditsql {name}`", 1)[1].split("\n## ", 1)[0]
        assert f"Usage: auditsql {name}" in body
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert opt in body, f"{opt} of {name} missing from docs/cli.md"
        assert re.search(r"--help\s+-h\s", body), name


def test_every_command_and_option_has_help_text() -> None:
    root = typer.main.get_command(app)
    assert (root.help or "").strip(), "the root command has no help"
    missing = [f"--{p.name}" for p in root.params if not (getattr(p, "help", "") or "").strip()]
    for name, cmd in all_commands().items():
        if not (cmd.help or "").strip():
            missing.append(name)
        missing += [
            f"{name} {p.name}" for p in cmd.params if not (getattr(p, "help", "") or "").strip()
        ]
    assert missing == []
    assert list(root.commands) == ["install", "upgrade", "attach", "detach", "snapshot",
                                   "status", "verify", "log", "show", "history", "diff",
                                   "export", "revert", "seal", "digest", "erase", "uninstall",
                                   "retention"]
    assert list(all_commands()) == [
        "install", "upgrade", "attach", "detach", "snapshot", "status", "verify", "log", "show",
        "history", "diff", "export", "revert", "seal", "digest", "erase", "uninstall",
        "retention",
        *(f"retention {c}" for c in
          ("set", "status", "hold", "release", "schedule", "unschedule", "run")),
    ]


def test_check_mode_reports_drift(
    generated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gen_cli_docs, "generate", lambda: generated)  # already run once
    stale = tmp_path / "cli.md"
    stale.write_text("stale\n", encoding="utf-8")
    assert gen_cli_docs.main(["--check", "--output", str(stale)]) == 1
    assert gen_cli_docs.main(["--output", str(stale)]) == 0
    assert gen_cli_docs.main(["--check", "--output", str(stale)]) == 0
