"""The main window: navigation on the left, the page on the right, actions above, the sync state below.

Until the owner first starts syncing (the set-up's Finish, or Start syncing here) nothing is sent, and a
banner says so; a token or address that stopped the sync shows in a banner that leads to Connections.
Closing the window while a tray icon is available keeps rf-desktop syncing in the tray (the first time,
a notification says so); Quit, from the menu, the tray or the close box, first settles settings edits
that are not saved yet (Save / Discard / Cancel), then the app stops the sync cleanly. The window's size,
position and page are remembered between launches.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from PySide6.QtCore import QEvent, QProcess, QProcessEnvironment, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from rf_desktop import __version__
from rf_desktop.core.instance_lock import AlreadySyncingError
from rf_desktop.gui import icons
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.doctor_dialog import DoctorDialog
from rf_desktop.gui.pages import create_pages
from rf_desktop.gui.tray import Tray
from rf_desktop.gui.widgets.form_helpers import ERROR, INFO, MessagePanel
from rf_desktop.gui.widgets.settings_draft import SettingsDraft
from rf_desktop.gui.widgets.sync_status import SyncStatusBar, problem_title

DEFAULT_SIZE = QSize(1280, 760)
NAV_WIDTH = 170
GEOMETRY_KEY = "window/geometry"
PAGE_KEY = "window/page"
TRAY_HINT_KEY = "tray/hint_shown"


class MainWindow(QMainWindow):
    """`quitRequested` asks the app to stop the sync and quit (it does the clean stop, then closes us)."""

    quitRequested = Signal()

    def __init__(
        self, controller: AppController, ui_settings: QSettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.ui_settings = ui_settings if ui_settings is not None else QSettings()
        self.quitting = False
        self.unsaved_box: QMessageBox | None = None  # the question Quit asks about unsaved settings
        self._built = False
        self.doctor_dialog: DoctorDialog | None = None
        self.wizard: QWidget | None = None
        title = "rf-desktop (demo)" if controller.demo else "rf-desktop"
        self.setWindowTitle(title)
        self.setWindowIcon(icons.app_icon())

        self.pages = create_pages(controller)
        self.nav = QListWidget()
        self.nav.setAccessibleName("Pages")
        self.nav.setFixedWidth(NAV_WIDTH)
        self.nav.setIconSize(QSize(20, 20))
        self.nav.setSpacing(2)
        self.nav.setFrameShape(QListWidget.Shape.NoFrame)
        self.stack = QStackedWidget()
        for page in self.pages:
            self.nav.addItem(QListWidgetItem(str(getattr(page, "title", ""))))
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.currentRowChanged.connect(lambda _row: self._show_problem())
        # nothing is sent before the owner says so: until then, what to do to start
        self.start_banner, self.start_button = _banner("Start syncing", self.start_syncing)
        # a token or address stopped the sync: which service, on every page, with the way to fix it
        self.problem_banner, self.fix_button = _banner(
            "Open Connections", lambda: self.show_page_named("Connections")
        )
        page_column = QVBoxLayout()
        page_column.setContentsMargins(0, 0, 0, 0)
        page_column.setSpacing(0)
        page_column.addWidget(self.start_banner)
        page_column.addWidget(self.problem_banner)
        page_column.addWidget(self.stack, 1)

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.nav)
        row.addLayout(page_column, 1)
        self.setCentralWidget(central)

        self._create_actions()
        self._create_menus()
        self.status = SyncStatusBar(controller)
        self.setStatusBar(self.status)
        tray_menu = [self.show_action, None, self.pause_action, self.sync_action, self.test_action, None]
        self.tray = Tray(controller, [*tray_menu, self.quit_action], parent=self)
        self.tray.fallbackMessage.connect(self.status.show_notice)
        self.tray.showWindowRequested.connect(self.bring_to_front)
        self.tray.show()

        controller.stateChanged.connect(lambda *_: self._update_sync_actions())
        controller.settingsChanged.connect(lambda *_: self._update_sync_actions())
        controller.schemaChanged.connect(lambda *_: self._update_sync_actions())
        controller.stateChanged.connect(lambda *_: self._show_problem())
        self._apply_icons()
        self._update_sync_actions()
        self._restore()
        self._show_problem()
        self._built = True

    # --- actions and menus ----------------------------------------------------------------------------

    def _action(self, text: str, shortcut: QKeySequence | str | None = None, slot: object = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if callable(slot):
            action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _create_actions(self) -> None:
        self.pause_action = self._action("&Pause syncing", "Ctrl+P", self.toggle_pause)
        self.sync_action = self._action("&Sync now", None, self.controller.sync_now)
        self.sync_action.setShortcuts([QKeySequence("F5"), QKeySequence("Ctrl+R")])
        self.test_action = self._action("Send &test referral…", "Ctrl+T", self.open_test_wizard)
        self.export_action = self._action("&Export log…", "Ctrl+E", self.export_log)
        self.quit_action = self._action("&Quit", QKeySequence.StandardKey.Quit, self.request_quit)
        self.quit_action.setShortcuts([QKeySequence("Ctrl+Q")])
        self.find_action = self._action("&Find", QKeySequence.StandardKey.Find, self.focus_search)
        self.show_action = QAction("Show window", self)
        self.show_action.triggered.connect(self.bring_to_front)
        self.about_action = self._action("&About rf-desktop", None, self.show_about)
        self.check_accounts_action = self._action("&Check my accounts…", None, self.check_accounts)
        self.page_actions: list[QAction] = []
        for number, page in enumerate(self.pages):
            title = str(getattr(page, "title", ""))
            action = self._action(title, f"Ctrl+{number + 1}", lambda _c=False, n=number: self.show_page(n))
            self.page_actions.append(action)

        toolbar = QToolBar("Sync")
        toolbar.setObjectName("syncToolbar")
        toolbar.setMovable(False)
        toolbar.setIconSize(QSize(18, 18))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.pause_action, self.sync_action, self.test_action, self.export_action):
            toolbar.addAction(action)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _create_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        if self.controller.demo:
            # the demo is what a newcomer sees first; this is the way from it to their own accounts
            self.set_up_action = self._action("Set &up my accounts…", None, self.leave_demo_for_set_up)
            file_menu.addAction(self.set_up_action)
            file_menu.addSeparator()
        file_menu.addAction(self.test_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        sync_menu = bar.addMenu("&Sync")
        sync_menu.addAction(self.pause_action)
        sync_menu.addAction(self.sync_action)
        view_menu = bar.addMenu("&View")
        for action in self.page_actions:
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self.find_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.check_accounts_action)
        help_menu.addAction(self.about_action)

    def _apply_icons(self) -> None:
        """Icons follow the palette's text colour, so they are re-made when light/dark switches."""
        for position, page in enumerate(self.pages):
            icon = icons.icon(str(getattr(page, "icon_name", "")))
            self.nav.item(position).setIcon(icon)
            self.page_actions[position].setIcon(icon)
        self.sync_action.setIcon(icons.icon("sync"))
        self.test_action.setIcon(icons.icon("send"))
        self.export_action.setIcon(icons.icon("export"))
        self.quit_action.setIcon(icons.icon("quit"))
        self.about_action.setIcon(icons.icon("about"))
        self.show_action.setIcon(icons.icon("show-window"))
        self.find_action.setIcon(icons.icon("search"))
        self._update_sync_actions()
        for page in self.pages:
            refresh = getattr(page, "refresh_icons", None)
            if callable(refresh):
                refresh()

    def _update_sync_actions(self) -> None:
        has_engine = self.controller.engine is not None
        paused = self.controller.paused
        if has_engine:
            self.pause_action.setText("&Resume syncing" if paused else "&Pause syncing")
            self.pause_action.setEnabled(True)
        else:
            # before the first start, the same button starts syncing, once the settings are complete
            self.pause_action.setText("&Start syncing")
            self.pause_action.setEnabled(self._can_start())
        self.pause_action.setIcon(icons.icon("resume" if paused or not has_engine else "pause"))
        self.sync_action.setEnabled(has_engine and not paused)
        self._show_start_banner()

    def _can_start(self) -> bool:
        return not self.controller.closed and self.controller.settings_complete()

    def _show_start_banner(self) -> None:
        if self.controller.engine is not None or self.controller.closed:
            self.start_banner.clear()
            return
        if self._can_start():
            detail = (
                "Your settings are complete. When Connections, Mapping and Rules are as you want them, "
                "press Start syncing."
            )
        else:
            detail = "Finish Connections, Mapping and Rules first; each page says what it still needs."
        self.start_banner.show_message(INFO, "rf-desktop is not sending anything to Pipedrive yet.", detail)
        self.start_button.setEnabled(self._can_start())

    def start_syncing(self) -> None:
        """The owner's Start: the latest edits are saved first, then the sync begins."""
        self.save_draft()
        if not self._can_start():
            self._update_sync_actions()
            return
        try:
            self.controller.start_engine()
        except AlreadySyncingError as error:
            QMessageBox.warning(self, "rf-desktop is already syncing", str(error))
            return
        self._update_sync_actions()

    def _show_problem(self) -> None:
        """The banner, except on Connections, whose own banner there says the same beside the fix."""
        service = self.controller.problem_service
        on_connections = getattr(self.current_page(), "title", "") == "Connections"
        if service and not on_connections:
            self.problem_banner.show_message(
                ERROR, problem_title(self.controller.state, service), self.controller.state_message
            )
        else:
            self.problem_banner.clear()

    # --- what the actions do --------------------------------------------------------------------------

    def current_page(self) -> QWidget:
        return self.pages[self.stack.currentIndex()]

    def show_page(self, number: int) -> None:
        if 0 <= number < len(self.pages):
            self.nav.setCurrentRow(number)

    def page_named(self, title: str) -> QWidget | None:
        return next((p for p in self.pages if getattr(p, "title", None) == title), None)

    def show_page_named(self, title: str) -> None:
        page = self.page_named(title)
        if page is not None:
            self.show_page(self.pages.index(page))

    def focus_search(self) -> None:
        focus = getattr(self.current_page(), "focus_search", None)
        if callable(focus):
            focus()

    def toggle_pause(self) -> None:
        if self.controller.engine is None:
            self.start_syncing()
        elif self.controller.paused:
            self.controller.resume()
        else:
            self.controller.pause()
        self._update_sync_actions()

    def export_log(self) -> None:
        log_page = self.page_named("Sync log")
        if log_page is None:
            return
        self.show_page_named("Sync log")
        export = getattr(log_page, "export", None)
        if callable(export):
            export()

    def open_test_wizard(self) -> None:
        """"Send test referral…": one wizard at a time; its "fix this" links open the settings pages."""
        from rf_desktop.gui.wizard import TestReferralWizard  # loaded on first use: most sessions never open it

        if self.wizard is None or not self.wizard.isVisible():
            self.wizard = TestReferralWizard(self.controller, ui_settings=self.ui_settings)
            self.wizard.openSettingsPage.connect(self._open_settings_page)
            self.wizard.setWindowIcon(icons.icon("send"))
            self.wizard.show()
        self.wizard.raise_()
        self.wizard.activateWindow()

    def _open_settings_page(self, title: str) -> None:
        self.bring_to_front()
        self.show_page_named(title)

    def show_about(self) -> None:
        demo = ""
        if self.controller.demo:
            demo = "<p><b>Demo mode:</b> everything here happens in the built-in sandbox.</p>"
        QMessageBox.about(
            self,
            "About rf-desktop",
            f"<h3>rf-desktop {__version__}</h3>"
            "<p>Sends people invited through your Referral Factory campaign to Pipedrive as a person with a "
            "lead or deal, and qualifies the referral in Referral Factory when it converts.</p>"
            f"{demo}"
            "<p>Your API tokens stay in your system's keychain.</p>",
        )

    def check_accounts(self) -> DoctorDialog:
        """Open the read-only check of both accounts and start it (one dialog, reused)."""
        if self.doctor_dialog is None:
            self.doctor_dialog = DoctorDialog(self.controller, self)
        self.doctor_dialog.open()
        self.doctor_dialog.check()
        return self.doctor_dialog

    def bring_to_front(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.raise_()
        self.activateWindow()

    def request_quit(self) -> None:
        """Quit (from the menu, Ctrl+Q, the tray or the close box): settings edits that can be saved are
        saved; edits that cannot be saved yet are the owner's to keep or throw away first."""
        if self.unsaved_box is not None:
            self.unsaved_box.raise_()
            return
        errors = self.draft.flush()
        if not errors:
            self.quitRequested.emit()
            return
        self.bring_to_front()
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Quit rf-desktop",
            "Your settings changes are not saved yet.",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText(
            f"Still to fix: {errors[0].message}\n\nSave keeps them unfinished, to carry on next time (the "
            "sync keeps using your last complete settings). Discard goes back to those settings."
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.button(QMessageBox.StandardButton.Save).setText("&Save")
        box.button(QMessageBox.StandardButton.Discard).setText("&Discard")
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda _result: self._unsaved_answered(box))
        self.unsaved_box = box
        box.open()

    def _unsaved_answered(self, box: QMessageBox) -> None:
        self.unsaved_box = None
        box.deleteLater()
        answer = box.standardButton(box.clickedButton()) if box.clickedButton() else None
        if answer == QMessageBox.StandardButton.Discard:
            self.draft.discard()
        if answer in (QMessageBox.StandardButton.Save, QMessageBox.StandardButton.Discard):
            self.quitRequested.emit()

    @property
    def draft(self) -> SettingsDraft:
        """The settings pages' shared draft of the settings."""
        return SettingsDraft.shared(self.controller)

    def save_draft(self) -> None:
        """The first step of every quit: unsaved settings edits are saved, or kept for next time."""
        self.draft.flush()

    def leave_demo_for_set_up(self) -> None:
        """Start rf-desktop on the owner's own data (its guided set-up runs, since nothing is set up yet)
        and close the demo, whose sandbox and throwaway database go with it."""
        program, arguments = real_app_command()
        if start_detached(program, arguments, {FROM_DEMO_VARIABLE: "1"}):
            self.request_quit()
        else:
            QMessageBox.warning(self, "rf-desktop", f"Could not start {program}. Run rf-desktop without --demo.")

    # --- closing --------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save()
        if self.quitting:
            self.tray.hide()
            event.accept()
            return
        event.ignore()
        if self.tray.available and self.controller.state != "not_configured":
            self.hide()
            if not self.ui_settings.value(TRAY_HINT_KEY, False, type=bool):
                self.tray.notify(
                    "rf-desktop keeps syncing",
                    "It runs in the tray, so new referrals still reach Pipedrive. "
                    "Choose Quit in its menu to stop.",
                )
                self.ui_settings.setValue(TRAY_HINT_KEY, True)
        else:
            self.request_quit()

    def close_for_quit(self) -> None:
        """The app has stopped the sync: close for good."""
        self.quitting = True
        if self.wizard is not None:
            self.wizard.close()
        self.close()

    # --- remembered between launches ------------------------------------------------------------------

    def _save(self) -> None:
        self.ui_settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.ui_settings.setValue(PAGE_KEY, self.stack.currentIndex())
        self.ui_settings.sync()

    def _restore(self) -> None:
        geometry = self.ui_settings.value(GEOMETRY_KEY)
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        page = self.ui_settings.value(PAGE_KEY, 0, type=int)
        self.show_page(page if isinstance(page, int) and 0 <= page < len(self.pages) else 0)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and self._built:
            self._apply_icons()
        super().changeEvent(event)


def _banner(action: str, slot: Callable[[], object]) -> tuple[MessagePanel, QPushButton]:
    """A message above the pages with the button that deals with it."""
    banner = MessagePanel()
    button = QPushButton(action)
    button.clicked.connect(slot)
    row = banner.layout()
    assert row is not None
    row.addWidget(button)
    return banner, button


# Set for the real app started from the demo's "Set up my accounts…": leaving its set-up returns to the demo.
FROM_DEMO_VARIABLE = "RF_DESKTOP_FROM_DEMO"


def start_detached(program: str, arguments: list[str], environment: dict[str, str] | None = None) -> bool:
    """Start another rf-desktop that outlives this one, with extra environment variables."""
    process = QProcess()
    process.setProgram(program)
    process.setArguments(arguments)
    if environment:
        variables = QProcessEnvironment.systemEnvironment()
        for name, value in environment.items():
            variables.insert(name, value)
        process.setProcessEnvironment(variables)
    return bool(process.startDetached())


def return_to_demo() -> bool:
    """This app was started from the demo to set up real accounts and the owner left the set-up: start
    the demo again. False when it was not started from the demo (or the demo could not start)."""
    if not os.environ.get(FROM_DEMO_VARIABLE):
        return False
    program, arguments = real_app_command()
    return start_detached(program, [*arguments, "--demo"])


def real_app_command() -> tuple[str, list[str]]:
    """How to start rf-desktop again, outside the demo: the bundled program, or this Python's module."""
    if getattr(sys, "frozen", False):
        return sys.executable, []
    return sys.executable, ["-m", "rf_desktop"]
