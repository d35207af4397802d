"""The wheel: the SQL under sql/ ships inside the package, and an installed
wheel renders the same install script as the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from auditsql import render

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(REPO)], check=True, capture_output=True)
    (found,) = out.glob("auditsql-*.whl")
    return found


def test_the_checkout_reads_sql_from_the_repository() -> None:
    assert render.sql_root() == REPO / "sql"
    assert not (REPO / "auditsql" / "sql").exists(), "no copy or link of sql/ in the package"


def test_the_wheel_holds_every_sql_file(wheel: Path) -> None:
    expected = {f"auditsql/sql/{p.relative_to(REPO / 'sql').as_posix()}"
                for p in (REPO / "sql").rglob("*") if p.is_file()}
    with zipfile.ZipFile(wheel) as z:
        shipped = {n for n in z.namelist() if n.startswith("auditsql/sql/")}
    assert shipped == expected


def test_an_installed_wheel_renders_the_checkouts_script(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    program = ("import sys; from auditsql import render; "
               "print(render.sql_root()); "
               "sys.stdout.write(render.install_sql(render.Settings(), 180000))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", program], env=env, cwd=tmp_path,
                         check=True, capture_output=True, text=True)
    root, script = run.stdout.split("\n", 1)
    assert Path(root) == target / "auditsql" / "sql"
    assert script == render.install_sql(render.Settings(), 180000)
