"""Sync log: everything the sync did, newest first, filterable, exportable to CSV."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core.export import export_log_csv
from rf_desktop.gui import icons
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.log import ACTION, LEVEL, LEVEL_FILTERS, LINK_ROLE, REFERRAL, TIME, LogTableModel
from rf_desktop.gui.tasks import run_dialog
from rf_desktop.gui.widgets.search_box import SearchBox

COLUMN_WIDTHS = {TIME: 110, LEVEL: 90, REFERRAL: 300, ACTION: 150}
COLUMN_WIDTHS.update({4: 70, 5: 90, 6: 70})
# A quick export finishes before a progress dialog would flash up.
PROGRESS_DELAY_MS = 400


class SyncLogPage(QWidget):
    title = "Sync log"
    icon_name = "sync-log"

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = LogTableModel(controller.store, parent=self)

        self.search = SearchBox("Search messages, actions or ids")
        self.search.setMinimumWidth(160)
        self.level_filter = QComboBox()
        self.level_filter.setAccessibleName("Level filter")
        self.level_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for choice in LEVEL_FILTERS:
            self.level_filter.addItem(choice.label, choice)
        self.export_button = QPushButton(icons.icon("export"), "Export to CSV…")

        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(QLabel("Show:"))
        bar.addWidget(self.level_filter)
        bar.addStretch(0)
        bar.addWidget(self.export_button)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Sync log")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setMouseTracking(True)
        self.table.verticalHeader().hide()
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        for column, width in COLUMN_WIDTHS.items():
            self.table.setColumnWidth(column, width)

        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(self.table, 1)

        self.search.searchChanged.connect(lambda text: self.model.set_filter(text=text))
        self.level_filter.currentIndexChanged.connect(
            lambda position: self.model.set_filter(level=self.level_filter.itemData(position))
        )
        self.export_button.clicked.connect(self.export)
        self.table.clicked.connect(self._on_clicked)
        self.table.entered.connect(self._on_hover)
        controller.logAdded.connect(self.model.add)
        controller.referralsChanged.connect(lambda ids: self.model.forget(*ids))
        controller.closing.connect(self.model.close)
        self._export: asyncio.Task[int | None] | None = None

    # --- page protocol --------------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def refresh_icons(self) -> None:
        """The palette changed (light/dark): icons follow its text colour."""
        self.search.refresh_icons()
        self.export_button.setIcon(icons.icon("export"))

    # --- links to Pipedrive ------------------------------------------------------------------------------

    def _on_clicked(self, index: QModelIndex) -> None:
        link = index.data(LINK_ROLE)
        if link is not None:
            self.controller.open_in_pipedrive(*link)

    def _on_hover(self, index: QModelIndex) -> None:
        linked = index.isValid() and index.data(LINK_ROLE) is not None
        self.table.viewport().setCursor(
            Qt.CursorShape.PointingHandCursor if linked else Qt.CursorShape.ArrowCursor
        )

    # --- export -----------------------------------------------------------------------------------------

    def export(self) -> asyncio.Task[int | None] | None:
        """Ask where to save, then write the log (with the current filters) as CSV in the background.
        While an export runs, asking again returns that export."""
        if self._export is not None and not self._export.done():
            return self._export
        suggested = Path.home() / f"rf-desktop-sync-log-{datetime.now():%Y-%m-%d}.csv"
        chosen, _filter = QFileDialog.getSaveFileName(
            self, "Export the sync log", str(suggested), "CSV files (*.csv);;All files (*)"
        )
        if not chosen:
            return None
        path = Path(chosen)
        if not path.suffix:
            path = path.with_suffix(".csv")
        self._export = self.controller.spawn("export-log", self.export_to(path))
        return self._export

    async def export_to(self, path: Path) -> int | None:
        """Write the CSV off the UI thread with a progress dialog; report the outcome in a message box."""
        level = self.model.level_filter.store_level
        text = self.model.text_filter or None
        progress = QProgressDialog("Exporting the sync log…", "", 0, 0, self)
        progress.setWindowTitle("Export to CSV")
        progress.setCancelButton(None)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(PROGRESS_DELAY_MS)
        progress.setAutoClose(False)
        loop = asyncio.get_running_loop()
        finished = False

        def show(done: int, total: int) -> None:
            if finished:
                return  # a late report must not bring the closed dialog back
            if total and progress.maximum() != total:
                progress.setMaximum(total)
            progress.setValue(min(done, total) if total else 0)

        def report(done: int, total: int) -> None:
            # called from the worker thread: hand the numbers to the UI thread
            loop.call_soon_threadsafe(show, done, total)

        self.export_button.setEnabled(False)
        store = self.controller.store
        failure = ""
        try:
            count = await loop.run_in_executor(
                None, lambda: export_log_csv(store, path, level=level, text=text, progress=report)
            )
        except OSError as error:
            failure = error.strerror or str(error)
        finally:
            finished = True
            progress.close()
            self.export_button.setEnabled(True)
        if failure:
            message = f"Could not write {path}:\n{failure}.\n\nChoose another folder or file name and try again."
            await run_dialog(QMessageBox(QMessageBox.Icon.Warning, "Export failed", message, parent=self))
            return None
        await self._exported(path, count, _filter_note(level, text))
        return count

    async def _exported(self, path: Path, count: int, note: str) -> None:
        noun = "row" if count == 1 else "rows"
        text = f"Exported {count:,} log {noun}{note}."
        box = QMessageBox(QMessageBox.Icon.Information, "Export finished", text, parent=self)
        box.setInformativeText(str(path))
        open_folder = box.addButton("Open folder", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        await run_dialog(box)
        if box.clickedButton() is open_folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))



def _filter_note(level: str | None, text: str | None) -> str:
    """What the export was limited to, in words: " (errors, matching “timeout”)"."""
    parts = [{"warning": "warnings and errors", "error": "errors"}.get(level or "", "")]
    if text:
        parts.append(f"matching “{text}”")
    shown = ", ".join(p for p in parts if p)
    return f" ({shown})" if shown else ""
