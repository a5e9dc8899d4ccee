"""`rf-desktop diagnose`: what an installed copy runs on (the release smoke test reads it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rf_desktop import diagnose


def test_diagnose_finds_the_ca_bundle_and_the_keychain_backend_without_loading_qt(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from rf_desktop.cli import main\n"
        "code = main(['diagnose'])\n"
        "assert 'PySide6' not in sys.modules, 'Qt was loaded'\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "RF_DESKTOP_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frozen"] is False
    assert report["data_dir"] == str(tmp_path / "data")
    assert Path(report["ca_bundle"]["path"]).is_file()
    assert report["ca_bundle"]["certificates"] > 100
    assert report["keychain"] == {"backend": "keyring.backends.SecretService", "loadable": True}


def test_a_keychain_library_left_out_of_the_build_is_reported() -> None:
    original = diagnose.KEYCHAIN_MODULES
    try:
        diagnose.KEYCHAIN_MODULES = {"linux": ("keyring.backends.SecretService", "rf_desktop_no_such_library")}
        report = diagnose.keychain_backend("linux")
    finally:
        diagnose.KEYCHAIN_MODULES = original
    assert report["loadable"] is False
    assert "rf_desktop_no_such_library" in report["detail"]


def test_a_system_without_a_known_keychain_is_reported() -> None:
    assert diagnose.keychain_backend("plan9") == {
        "backend": None,
        "loadable": False,
        "detail": "no system keychain is known for plan9",
    }
