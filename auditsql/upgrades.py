"""Versions, and the upgrade steps between them. No database access here.

An upgrade step is a file ``sql/upgrades/FROM--TO.sql``: what changes, in
objects that keep state (tables, their columns and data, types), between
release FROM and release TO, and the functions that release TO no longer
has or defines with another signature. A step is never edited once TO is
released (tests/upgrade/test_steps.py holds the digest of each); a change
to a released table is a new step. Functions, views and triggers are not
upgraded by steps: every install re-creates them from the current files.

The install script applies, in order, the steps leading from the installed
version (the newest row of ``audit.installation``) to this one, before it
creates anything; a fresh install creates the tables in their current shape
and applies none.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from auditsql import __version__, errors, render

STEPS_DIR = "upgrades"
_STEP_NAME = re.compile(r"(?P<source>[^-/]+)--(?P<target>[^-/]+)\.sql")


@dataclass(frozen=True)
class Step:
    """One upgrade step: from one release to the next."""

    source: str  # the version it upgrades from
    target: str  # the version it upgrades to

    @property
    def template(self) -> str:
        """Its file, as the renderer names it: ``upgrades/0.1.0--0.2.0.sql``."""
        return f"{STEPS_DIR}/{self.source}--{self.target}.sql"


def parse(version: str) -> Version | None:
    """``version`` as a version, or None when it is not one (PEP 440)."""
    try:
        return Version(version)
    except InvalidVersion:
        return None


@functools.cache
def steps() -> tuple[Step, ...]:
    """Every upgrade step in ``sql/upgrades``, oldest first.

    Each leads from one release to the next: a step's target is the
    following step's source, and the last one's is this package's version.
    """
    folder = render.sql_root() / STEPS_DIR
    found = []
    for entry in folder.iterdir():
        match = _STEP_NAME.fullmatch(entry.name)
        if match is None:
            raise ValueError(f"sql/{STEPS_DIR}/{entry.name}: not a step (FROM--TO.sql)")
        found.append(Step(match["source"], match["target"]))
    return tuple(sorted(found, key=lambda s: Version(s.source)))


def path(installed: str) -> tuple[Step, ...]:
    """The steps that bring an installation of version ``installed`` to this
    package's version, in the order they apply; none when it is this one.

    CannotUpgrade when it is newer than this package, or no step leads from
    it (a version never released, or older than the oldest step).
    """
    if installed == __version__:
        return ()
    found = parse(installed)
    if found is not None and found > Version(__version__):
        raise errors.CannotUpgrade(
            f"auditsql {installed} is installed, which is newer than this package "
            f"({__version__}); upgrade the auditsql package to {installed} or later instead")
    chain: list[Step] = []
    at = installed
    for step in steps():
        if step.source == at:
            chain.append(step)
            at = step.target
    if at != __version__:
        known = ", ".join(s.source for s in steps())
        raise errors.CannotUpgrade(
            f"auditsql {installed} is installed, and this package ({__version__}) has no "
            f"upgrade from it (it upgrades from {known or 'no version'})")
    return tuple(chain)


def is_newer(installed: str) -> bool:
    """Whether ``installed`` is a later version than this package's."""
    found = parse(installed)
    return found is not None and found > Version(__version__)
