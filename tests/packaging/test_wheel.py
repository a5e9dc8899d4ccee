"""The wheel a person installs with pip: built from this checkout, installed in a fresh virtual environment
outside it, it must carry everything the app reads at run time (the icons above all)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_SECONDS = 10
PROBLEMS = re.compile(r"Traceback|is missing|Could not (load|find)|No module named")


def _source_copy(target: Path) -> Path:
    """The checkout's files as a fresh clone has them: no build/ or egg-info left by earlier builds, whose
    file lists setuptools would reuse (and so hide a file the package data leaves out)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel, and what building it printed (pip's verbose output carries the build's warnings)."""
    root = tmp_path_factory.mktemp("wheel")
    source = _source_copy(root / "source")
    build = [*PIP, "wheel", "--verbose", "--no-deps", "--wheel-dir", str(root / "wheels"), str(source)]
    output = subprocess.run(build, check=True, capture_output=True, text=True)
    (wheel,) = (root / "wheels").glob("rf_desktop-*.whl")
    return wheel, output.stdout + output.stderr


def test_building_the_package_prints_no_warnings(built: tuple[Path, str]) -> None:
    _wheel, output = built
    warnings = [line for line in output.splitlines() if re.search(r"Warning|deprecated", line)]
    assert warnings == []


@pytest.fixture(scope="module")
def installed(built: tuple[Path, str]) -> Path:
    """The bin folder of a fresh virtual environment with the wheel installed."""
    wheel, _output = built
    root = wheel.parent.parent
    pip = [*PIP, "--quiet"]
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run([bin_dir / "python", *pip[1:], "install", str(wheel)], check=True, cwd=root)
    return bin_dir


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, "HOME": str(tmp_path), "RF_DESKTOP_DATA_DIR": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}


def test_the_wheel_runs_from_its_own_environment(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [installed / "python", "-c", "import rf_desktop; print(rf_desktop.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert not Path(where.stdout.strip()).is_relative_to(ROOT), "the checkout's copy was imported"
    report = subprocess.run(
        [installed / "rf-desktop", "diagnose"], env=_clean_env(tmp_path), cwd=tmp_path, capture_output=True,
        text=True, check=True,
    )
    assert json.loads(report.stdout)["keychain"]["loadable"] is True


def test_the_demo_from_the_wheel_finds_every_icon(installed: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [installed / "rf-desktop", "--demo"], env=_clean_env(tmp_path), cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        process.wait(timeout=DEMO_SECONDS)
        quit_early = True
    except subprocess.TimeoutExpired:
        quit_early = False
        process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert not quit_early, f"the demo quit by itself within {DEMO_SECONDS} s: {stderr}"
    assert not PROBLEMS.search(stderr), stderr
