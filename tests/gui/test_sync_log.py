"""The Sync log page: live rows, filters, and the CSV export through the file dialog."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.log import DEAL, LINK_ROLE, MESSAGE, PERSON, REFERRAL
from rf_desktop.gui.pages.sync_log import SyncLogPage
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import MessageBoxes, referral, sign_up


@pytest.fixture
def page(controller: AppController, qtbot: QtBot) -> SyncLogPage:
    made = SyncLogPage(controller)
    qtbot.addWidget(made)
    made.resize(1000, 500)
    made.show()
    return made


def choose_file(monkeypatch: pytest.MonkeyPatch, path: Path | str) -> list[str]:
    """The save dialog answers `path`; returns the suggested names it was shown."""
    suggested: list[str] = []

    def answer(_parent: object, _title: str, directory: str, _filter: str) -> tuple[str, str]:
        suggested.append(directory)
        return str(path), "CSV files (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(answer))
    return suggested


def log_rows(controller: AppController, count: int) -> None:
    controller.store.record_referral(referral(1, first_name="Zoë"))
    for n in range(count):
        level = "error" if n % 10 == 0 else "info"
        controller.store.log(level, "pushed", f"=row {n}, with a comma", rf_user_id=1, person_id=n)


def test_export_writes_the_log_as_csv(
    controller: AppController,
    page: SyncLogPage,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message_boxes: MessageBoxes,
) -> None:
    log_rows(controller, 2500)
    target = tmp_path / "sync-log"  # no extension typed: .csv is added
    suggested = choose_file(monkeypatch, target)

    task = page.export()
    assert task is not None
    qtbot.waitUntil(task.done, timeout=10_000)

    assert task.result() == 2500
    assert suggested[0].endswith(".csv")
    with (tmp_path / "sync-log.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 2501
    assert rows[1][9] == "'=row 0, with a comma"  # formula-safe, comma quoted
    assert rows[1][2:5] == ["Zoë", "person1@example.com", "To send"]  # name and email, not an internal number
    assert message_boxes.shown[-1][:2] == ("information", "Export finished")
    assert "Exported 2,500 log rows." in message_boxes.texts()[-1]
    assert page.export_button.isEnabled()


def test_export_keeps_the_filters(
    controller: AppController,
    page: SyncLogPage,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message_boxes: MessageBoxes,
) -> None:
    log_rows(controller, 100)
    page.level_filter.setCurrentIndex(3)  # Errors
    assert page.model.rowCount() == 10
    choose_file(monkeypatch, tmp_path / "errors.csv")

    task = page.export()
    assert task is not None
    qtbot.waitUntil(task.done, timeout=10_000)

    assert task.result() == 10
    assert "Exported 10 log rows (errors)." in message_boxes.texts()[-1]


def test_a_write_error_is_explained(
    controller: AppController,
    page: SyncLogPage,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message_boxes: MessageBoxes,
) -> None:
    log_rows(controller, 5)
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()  # a directory where the file should go
    choose_file(monkeypatch, folder)

    task = page.export()
    assert task is not None
    qtbot.waitUntil(task.done, timeout=10_000)

    assert task.result() is None
    kind, title, text = message_boxes.shown[-1]
    assert (kind, title) == ("warning", "Export failed")
    assert str(folder) in text
    assert "Choose another folder" in text
    assert [p for p in tmp_path.iterdir() if ".csv" in p.name] == [folder]  # no half-written file left


def test_a_missing_folder_is_explained(
    controller: AppController,
    page: SyncLogPage,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message_boxes: MessageBoxes,
) -> None:
    log_rows(controller, 5)
    choose_file(monkeypatch, tmp_path / "gone" / "log.csv")
    task = page.export()
    assert task is not None
    qtbot.waitUntil(task.done, timeout=10_000)
    kind, title, text = message_boxes.shown[-1]
    assert (kind, title) == ("warning", "Export failed")
    assert "No such file or directory" in text


def test_cancelling_the_dialog_exports_nothing(
    page: SyncLogPage, monkeypatch: pytest.MonkeyPatch, message_boxes: MessageBoxes
) -> None:
    choose_file(monkeypatch, "")
    assert page.export() is None
    assert message_boxes.shown == []


def test_new_log_rows_appear_at_the_top(controller: AppController, page: SyncLogPage, qtbot: QtBot) -> None:
    log_rows(controller, 3)
    page.model.reload()
    assert page.model.rowCount() == 3
    row = controller.store.log("warning", "retry scheduled", "Pipedrive was busy; trying again soon.")
    controller.logAdded.emit(row)
    qtbot.waitUntil(lambda: page.model.rowCount() == 4)
    assert page.model.index(0, MESSAGE).data() == "Pipedrive was busy; trying again soon."


def test_filters_by_text_and_level(controller: AppController, page: SyncLogPage, qtbot: QtBot) -> None:
    log_rows(controller, 30)
    page.model.reload()  # read what was just written
    page.focus_search()
    qtbot.keyClicks(page.search, "row 2")
    qtbot.waitUntil(lambda: page.model.rowCount() == 11)  # row 2, row 20..29
    page.level_filter.setCurrentIndex(3)  # Errors
    assert page.model.rowCount() == 1
    assert page.model.index(0, MESSAGE).data() == "=row 20, with a comma"


def test_live_rows_arrive_from_the_running_sync(
    sandbox_controller: AppController, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    sign_up(sandbox, first_name="Emma")
    page = SyncLogPage(sandbox_controller)
    qtbot.addWidget(page)
    sandbox_controller.start_engine()

    def messages() -> list[str]:
        return [page.model.index(r, MESSAGE).data() for r in range(page.model.rowCount())]

    qtbot.waitUntil(lambda: any("from Referral Factory recorded" in m for m in messages()), timeout=10_000)


def test_one_export_at_a_time(
    controller: AppController,
    page: SyncLogPage,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message_boxes: MessageBoxes,
) -> None:
    log_rows(controller, 50)
    asked = choose_file(monkeypatch, tmp_path / "log.csv")
    first = page.export()
    again = page.export()  # Ctrl+E pressed again while writing
    assert again is first
    assert len(asked) == 1
    assert first is not None
    qtbot.waitUntil(first.done, timeout=10_000)
    assert first.result() == 50


def test_rows_name_the_referral_and_their_ids_open_in_pipedrive(
    sandbox_controller: AppController, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = sandbox_controller
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(QUrl(url).toString()) or True)
    controller.store.record_referral(referral(8, first_name="王芳", email="wang.fang@example.com"))
    controller.store.log("info", "deal created", "Created deal 55.", rf_user_id=8, person_id=21, deal_id=55)
    page = SyncLogPage(controller)
    qtbot.addWidget(page)
    page.resize(1200, 400)
    page.show()
    qtbot.waitExposed(page)

    assert page.model.index(0, REFERRAL).data() == "王芳 · wang.fang@example.com"
    assert page.model.index(0, DEAL).data(LINK_ROLE) == ("deal", 55)
    assert page.model.index(0, PERSON).data(Qt.ItemDataRole.FontRole).underline()
    rect = page.table.visualRect(page.model.index(0, DEAL))
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [f"{controller.settings().pipedrive.base_url.rstrip('/')}/deal/55"]
