"""scripts/setup on a fresh clone: it says what it does in its own words, and nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone the checkout")
def test_a_fresh_clone_sets_up_saying_only_its_own_lines(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    for name in ("pyproject.toml", "scripts/setup"):  # as in the checkout, committed or not
        shutil.copy2(ROOT / name, clone / name)
    home = tmp_path / "home"  # a newcomer's account, without this one's pip configuration
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run(
        ["bash", "scripts/setup"], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "Installing rf-desktop into .venv\n"
