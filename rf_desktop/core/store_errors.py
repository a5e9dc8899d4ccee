"""What can stop the store from opening or writing its file, each with a message that says what to do."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """The database cannot be opened, upgraded or written; the message says what to do."""


class FolderNotCreatedError(StoreError):
    """The folder the database belongs in does not exist and cannot be made."""


class ReadOnlyDatabaseError(StoreError):
    """The database, or the folder it is in, may not be written to."""


class DiskFullError(StoreError):
    """The disk holding the database is full."""


class DamagedDatabaseError(StoreError):
    """The file is damaged (it fails SQLite's integrity check), or is not a database at all."""


HOW_TO_MOVE = "or use another data folder (RF_DESKTOP_DATA_DIR, or `--db FILE` on the command line)"


def ensure_folder(folder: Path) -> None:
    """Create `folder` (and its parents) unless it exists; a clear FolderNotCreatedError otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FolderNotCreatedError(
            f"Could not create the folder {folder} for rf-desktop's data ({error.strerror or error}). "
            f"Create it yourself and make it writable, {HOW_TO_MOVE}."
        ) from None
