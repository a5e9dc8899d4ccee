"""Help → Check my accounts: the doctor's read-only report on both accounts, with Save, so the owner can
attach it to a support request. The report comes from `core/doctor.py`, the same as `rf-desktop doctor`."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core.doctor import DoctorReport
from rf_desktop.gui.controller import AppController

INTRO = (
    "rf-desktop looks at both accounts without changing anything in them. The report leaves out your tokens "
    "and personal data, so you can attach it to a support request."
)


class DoctorDialog(QDialog):
    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.report: DoctorReport | None = None
        self.setWindowTitle("Check my accounts")
        self.resize(760, 560)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.save_button = QPushButton("Save report…")
        self.save_button.clicked.connect(self.save)
        self.again_button = QPushButton("Check again")
        self.again_button.clicked.connect(self.check)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.status)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)

    def check(self) -> asyncio.Task[None]:
        """Run the checks in the background (a few seconds: both accounts are read)."""
        self.save_button.setEnabled(False)
        self.again_button.setEnabled(False)
        self.status.setText("Checking both accounts…")
        return self.controller.spawn("check-accounts", self._check())

    async def _check(self) -> None:
        try:
            self.report = await self.controller.check_accounts()
        finally:
            self.again_button.setEnabled(True)
        self.text.setPlainText(self.report.text())
        problems = len(self.report.problems)
        if problems:
            noun = "problem" if problems == 1 else "problems"
            self.status.setText(f"{problems} {noun} found: see the lines marked “problem”.")
        else:
            self.status.setText("No problems found.")
        self.save_button.setEnabled(True)

    def save(self) -> Path | None:
        """Ask where to save the report, and write it there."""
        if self.report is None:
            return None
        suggested = Path.home() / f"rf-desktop-check-{date.today():%Y-%m-%d}.txt"
        chosen, _filter = QFileDialog.getSaveFileName(
            self, "Save the report", str(suggested), "Text files (*.txt);;All files (*)"
        )
        if not chosen:
            return None
        path = Path(chosen)
        try:
            path.write_text(self.text.toPlainText(), encoding="utf-8")
        except OSError as error:
            self.status.setText(f"Could not save the report to {path}: {error.strerror or error}.")
            return None
        self.status.setText(f"Saved to {path}.")
        return path
