"""Upgrade steps (sql/upgrades/) and versions. No database.

A released step is never edited: a change to a released table is a new
step. The digest of each step is recorded here when the version it leads to
is released; RELEASED is the record.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from auditsql import __version__, errors, render, upgrades
from auditsql.render import Settings, install_sql

# Step file -> SHA-256 of its bytes, as released.
RELEASED = {
    "0.1.0--0.2.0.sql": "f4da4579411341d9d3229b3613284f5d82a31754ff0812bbe55fbcbc7b32d00c",
}


def step_files() -> dict[str, bytes]:
    folder = render.sql_root() / upgrades.STEPS_DIR
    return {f.name: f.read_bytes() for f in folder.iterdir()}


def test_released_steps_are_never_edited() -> None:
    found = {name: hashlib.sha256(data).hexdigest() for name, data in step_files().items()}
    assert found == RELEASED, (
        "a released upgrade step changed, or a step is not recorded: a change to a released "
        "table is a new step (sql/upgrades/FROM--TO.sql), recorded in RELEASED")


def test_the_steps_lead_from_the_first_release_to_this_version() -> None:
    steps = upgrades.steps()
    assert [s.source for s in steps[1:]] == [s.target for s in steps[:-1]]
    assert steps[-1].target == __version__
    assert steps[0].source == "0.1.0"
    assert upgrades.path("0.1.0") == steps
    assert upgrades.path(__version__) == ()


@pytest.mark.parametrize(("installed", "newer"), [
    ("0.1.0", False), ("0.2.0rc1", False), ("0.1.9", False), ("0.2.0.post1", True),
    ("0.10.0", True), ("1.0", True), ("not a version", False), ("0.2.0", False)])
def test_versions_compare_as_versions(installed: str, newer: bool) -> None:
    assert upgrades.is_newer(installed) is newer


def test_a_newer_installation_is_refused() -> None:
    with pytest.raises(errors.CannotUpgrade,
                       match=r"^auditsql 0\.10\.0 is installed, which is newer than this package "
                             rf"\({re.escape(__version__)}\); upgrade the auditsql package "
                             r"to 0\.10\.0 or later instead$"):
        upgrades.path("0.10.0")


@pytest.mark.parametrize("installed", ["0.0.9", "0.2.0rc1", "not a version"])
def test_a_version_no_step_leads_from_is_refused(installed: str) -> None:
    with pytest.raises(errors.CannotUpgrade,
                       match=rf"^auditsql {re.escape(installed)} is installed, and this package "
                             rf"\({re.escape(__version__)}\) has no upgrade from it "
                             r"\(it upgrades from 0\.1\.0"):
        upgrades.path(installed)


def test_the_install_script_carries_every_step_in_order() -> None:
    script = install_sql(Settings(schema="elsewhere"), 170000)
    context = render._context(Settings(schema="elsewhere"), 170000, True, "[]")
    at = [script.index(render.quote_literal(step["sql"])) for step in context["upgrades"]]
    assert at == sorted(at) and len(at) == len(upgrades.steps())
    assert '"elsewhere".tables' in context["upgrades"][0]["sql"]
    # Before anything is created, after the fingerprints are read.
    assert script.index("auditsql.intact") < at[0] < script.index(
        'CREATE TABLE IF NOT EXISTS "elsewhere".installation')


def test_table_files_create_the_current_shape() -> None:
    """What changes a released table belongs in a step, not in its file."""
    for f in (render.sql_root() / "tables").iterdir():
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"\bALTER TABLE\b[^;]*\b(ADD|DROP|ALTER) COLUMN\b", text), f.name
        assert not re.search(r"\bDROP (TABLE|INDEX|TYPE)\b", text), f.name
