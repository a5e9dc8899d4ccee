"""Where rf-desktop keeps its files. `RF_DESKTOP_DATA_DIR` overrides the platform's data directory."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

from rf_desktop import APP_NAME
from rf_desktop.core.store_errors import ensure_folder


def data_dir() -> Path:
    """The user's rf-desktop data directory, created if missing (FolderNotCreatedError says why not)."""
    override = os.environ.get("RF_DESKTOP_DATA_DIR")
    path = Path(override) if override else Path(user_data_dir(APP_NAME, appauthor=False))
    ensure_folder(path)
    return path


def default_db_path() -> Path:
    """The SQLite store that holds settings, referrals and the sync log."""
    return data_dir() / "rf-desktop.sqlite3"


def demo_db_path() -> Path:
    """The demo keeps its own store, so trying the demo never touches real referrals."""
    return data_dir() / "demo.sqlite3"
