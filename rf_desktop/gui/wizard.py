"""The "send test referral" wizard: one click does what Referral Factory's guide asks an owner to do by
hand, and shows each step as it happens.

Four pages: what will be created (and whether the configuration allows it), live progress with the fields
read back from Pipedrive, the qualification rule (wait for it; in the demo, play the salesperson), and a
summary to copy, with Run again and Clean up. The work is `core.trial.TrialRun`, run on the app's
qasync loop through the controller's tasks, so the window never freezes. Closing the wizard mid-run
stops the run and says what exists.

`openSettingsPage(title)` asks for a settings page ("Connections", "Mapping", "Rules"); when nothing is
connected to it, the wizard shows the page in the main window itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QPointF, QRectF, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from rf_desktop.core import rules
from rf_desktop.core.events import Event, LogAdded, ReferralChanged
from rf_desktop.core.secrets import TOKEN_NAMES
from rf_desktop.core.trial.cleanup import CleanupItem
from rf_desktop.core.trial.fields import FieldCheck
from rf_desktop.core.trial.plan import Plan
from rf_desktop.core.trial.run import DEFAULT_EMAIL_BASE, TrialRun
from rf_desktop.core.trial.steps import (
    CLEANED,
    DONE,
    FAILED_STEP,
    ITEM,
    PERSON,
    QUALIFIED_STEP,
    REFERRER,
    RESUME,
    RUN_STEPS,
    RUNNING,
    SKIPPED_STEP,
    Problem,
    StepUpdate,
    seconds_text,
    step_title,
)
from rf_desktop.gui import icons, theme
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.tasks import run_dialog
from rf_desktop.gui.widgets.form_helpers import (
    ERROR,
    INFO,
    SUCCESS,
    WARNING,
    BusyIndicator,
    MessagePanel,
    hint_label,
    wrapped_label,
)
from rf_desktop.gui.widgets.settings_draft import OwnedTasks
from rf_desktop.sandbox.admin_client import SandboxAdmin

EMAIL_KEY = "test_referral/email_base"
EMAIL_PLACEHOLDER = "you@yourbusiness.com"
EMAIL_NEEDED = (
    "The test signs up two people at tagged copies of your address, and your campaign may email them: "
    "use an address you read."
)
NO_EMAIL_YET = "(shown once you type your email address)"
PAGE_TITLES = {"connections": "Connections", "mapping": "Mapping", "rules": "Rules"}
PLAN_PAGE, PROGRESS_PAGE, QUALIFY_PAGE, SUMMARY_PAGE = range(4)
PENDING = "pending"
TICK_MS = 200
QUALIFICATION_TIMEOUT = 30 * 60.0  # the guide's "up to 30 minutes", then the sync simply keeps watching
ICON_SIZE = 16


# --- step icons: drawn, so they follow the palette and never depend on a font's glyphs ---------------------


def step_icon(state: str) -> QIcon:
    """An empty ring (pending), a half-filled ring (running), a tick (done), a cross (failed), a dash
    (skipped), in the colours that carry those meanings everywhere in the app."""
    tone = {RUNNING: theme.BUSY, DONE: theme.GOOD, FAILED_STEP: theme.BAD, SKIPPED_STEP: theme.WARN}.get(
        state, theme.QUIET
    )
    icon = QIcon()
    for size in (ICON_SIZE, ICON_SIZE * 2):
        icon.addPixmap(_draw_step_icon(state, tone.colour(), size))
    return icon


def _draw_step_icon(state: str, colour: QColor, size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(colour, size / 8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    box = QRectF(size * 0.15, size * 0.15, size * 0.7, size * 0.7)
    if state == DONE:
        painter.drawPolyline(
            [QPointF(size * 0.2, size * 0.55), QPointF(size * 0.42, size * 0.76), QPointF(size * 0.8, size * 0.28)]
        )
    elif state == FAILED_STEP:
        painter.drawLine(QPointF(size * 0.25, size * 0.25), QPointF(size * 0.75, size * 0.75))
        painter.drawLine(QPointF(size * 0.75, size * 0.25), QPointF(size * 0.25, size * 0.75))
    elif state == SKIPPED_STEP:
        painter.drawLine(QPointF(size * 0.25, size * 0.5), QPointF(size * 0.75, size * 0.5))
    else:
        painter.drawEllipse(box)
        if state == RUNNING:
            painter.setBrush(colour)
            painter.drawPie(box, 90 * 16, -180 * 16)
    painter.end()
    return pixmap


def _bold(label: QLabel) -> QLabel:
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def _selectable(label: QLabel) -> QLabel:
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


# --- page 1: what will be created -----------------------------------------------------------------------


class ProblemRow(QWidget):
    """One thing to fix before sending, with the button that leads to where it is fixed."""

    def __init__(self, problem: Problem, wizard: TestReferralWizard) -> None:
        super().__init__()
        self.problem = problem
        self.message = MessagePanel()
        self.message.show_message(ERROR, problem.message, problem.hint)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.message, 1)
        self.button: QPushButton | None = None
        if problem.action == RESUME:
            self.button = QPushButton(icons.icon("resume"), "Resume syncing")
            self.button.clicked.connect(wizard.resume_sync)
        elif problem.settings_page is not None:
            title = PAGE_TITLES[problem.settings_page]
            self.button = QPushButton(f"Open {title}")
            self.button.clicked.connect(lambda: wizard.open_settings_page(title))
        if self.button is not None:
            row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)


class PlanPage(QWizardPage):
    def __init__(self, wizard: TestReferralWizard) -> None:
        super().__init__()
        self.test_wizard = wizard
        self.setTitle("Send a test referral")
        self.setSubTitle(
            "rf-desktop signs up a Person Referring and, through that person's referral link, a Person "
            "Invited, then follows the Person Invited to Pipedrive. Everything is marked as a test and can "
            "be removed afterwards."
        )
        self.setCommitPage(True)
        self.plan: Plan | None = None
        self.campaign = QComboBox()
        self.campaign.setAccessibleName("Campaign")
        self.campaign.currentIndexChanged.connect(self._campaign_chosen)
        self.account = _selectable(wrapped_label())
        self.creates = wrapped_label()
        self.email = QLineEdit()
        self.email.setAccessibleName("Your email address")
        self.email.setPlaceholderText(EMAIL_PLACEHOLDER)
        self.email.textChanged.connect(self._email_edited)
        self.email_needed = MessagePanel()
        self.referrer_email = _selectable(QLabel())
        self.invited_email = _selectable(QLabel())
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Referral Factory campaign:", self.campaign)
        form.addRow("Pipedrive account:", self.account)
        form.addRow("What is created:", self.creates)
        email_box = QVBoxLayout()
        email_box.setSpacing(2)
        email_box.addWidget(self.email)
        email_box.addWidget(hint_label("The test adds a +rf-test tag to it, so every run uses new addresses."))
        email_box.addWidget(self.email_needed)
        email_label = QLabel("&Your email address:")
        email_label.setBuddy(self.email)
        form.addRow(email_label, email_box)
        form.addRow("Person Referring:", self.referrer_email)
        form.addRow("Person Invited:", self.invited_email)
        self.checking = BusyIndicator("Checking the configuration…")
        self.ready = MessagePanel()
        self.problems = QVBoxLayout()
        self.problems.setSpacing(6)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addSpacing(8)
        column.addWidget(_bold(QLabel("Configuration check")))
        column.addWidget(self.checking)
        column.addWidget(self.ready)
        column.addLayout(self.problems)
        column.addStretch(1)

    def initializePage(self) -> None:
        # the demo's accounts are make-believe, so its example address is filled in, in plain sight; a real
        # test needs an address the owner reads, and waits for one
        remembered = self.test_wizard.email_base()
        self.email.blockSignals(True)
        self.email.setText(remembered or (DEFAULT_EMAIL_BASE if self.test_wizard.is_demo() else ""))
        self.email.blockSignals(False)
        self._show_email_needed()
        self.plan = None
        self.checking.start()
        self.test_wizard.tasks.spawn("tokens", self.test_wizard.load_tokens())

    def refresh(self) -> None:
        """Plan again (settings, the sync's state, the address or the campaign changed)."""
        trial = self.test_wizard.trial
        if trial is None or not self.test_wizard.tokens_read:
            return
        self.checking.stop()
        self.plan = plan = trial.plan()
        self.campaign.blockSignals(True)
        self.campaign.clear()
        for campaign_id, name in plan.campaigns:
            self.campaign.addItem(name, campaign_id)
        self.campaign.setCurrentIndex(max(0, self.campaign.findData(plan.campaign_id)))
        self.campaign.setEnabled(len(plan.campaigns) > 1)
        self.campaign.blockSignals(False)
        self.account.setText(plan.pipedrive_account)
        self.creates.setText("\n".join(plan.creates))
        typed = bool(self.typed_email())
        self.referrer_email.setText(plan.referrer_email if typed else NO_EMAIL_YET)
        self.invited_email.setText(plan.invited_email if typed else NO_EMAIL_YET)
        self._show_problems(plan)
        self.completeChanged.emit()
        if plan.ok and self.test_wizard.send_when_ready:
            self.test_wizard.send_when_ready = False
            QTimer.singleShot(0, self.test_wizard.next)

    def _show_problems(self, plan: Plan) -> None:
        while self.problems.count():
            widget = self.problems.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        if plan.ok:
            self.ready.show_message(SUCCESS, "Ready to send.", "Press Send test referral to start.")
            return
        self.ready.clear()
        for problem in plan.problems:
            self.problems.addWidget(ProblemRow(problem, self.test_wizard))

    def problem_rows(self) -> list[ProblemRow]:
        rows = (self.problems.itemAt(i).widget() for i in range(self.problems.count()))
        return [row for row in rows if isinstance(row, ProblemRow)]

    def typed_email(self) -> str:
        """The address typed in the box, when it looks like one ("" otherwise)."""
        text = self.email.text().strip()
        name, at, domain = text.partition("@")
        return text if name and at and domain else ""

    def _show_email_needed(self) -> None:
        if self.typed_email():
            self.email_needed.clear()
        elif not self.email.text().strip():
            self.email_needed.show_message(WARNING, "Type your email address.", EMAIL_NEEDED)
        else:
            self.email_needed.show_message(WARNING, "That is not an email address yet.", EMAIL_NEEDED)

    def _email_edited(self, text: str) -> None:
        self._show_email_needed()
        if self.test_wizard.trial is not None:
            self.test_wizard.trial.email_base = self.typed_email() or DEFAULT_EMAIL_BASE
            self.refresh()
        self.completeChanged.emit()

    def _campaign_chosen(self, index: int) -> None:
        if self.test_wizard.trial is not None and index >= 0:
            self.test_wizard.trial.campaign_id = self.campaign.itemData(index)
            self.refresh()

    def isComplete(self) -> bool:
        return self.plan is not None and self.plan.ok and bool(self.typed_email())

    def validatePage(self) -> bool:
        self.test_wizard.remember_email_base(self.email.text().strip())
        return self.isComplete()


# --- page 2: live progress --------------------------------------------------------------------------------


class StepRow(QWidget):
    """One step: icon, name, links, time taken; below, what happened and, when it failed, what to do."""

    def __init__(self, step: str, title: str) -> None:
        super().__init__()
        self.step = step
        self.state = PENDING
        self.icon = QLabel()
        self.icon.setFixedSize(ICON_SIZE, ICON_SIZE)
        self.title = QLabel(title)
        self.time = QLabel()
        self.time.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.detail = _selectable(wrapped_label())
        self.hint = hint_label("")
        self.actions = QHBoxLayout()
        self.actions.setContentsMargins(0, 0, 0, 0)
        self.actions.setSpacing(2)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.icon)
        top.addWidget(self.title)
        top.addStretch(1)
        top.addLayout(self.actions)
        top.addWidget(self.time)
        below = QVBoxLayout()
        below.setContentsMargins(ICON_SIZE + 6, 0, 0, 0)
        below.setSpacing(2)
        below.addWidget(self.detail)
        below.addWidget(self.hint)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 3, 0, 3)
        column.setSpacing(1)
        column.addLayout(top)
        column.addLayout(below)
        self.set_state(PENDING, None, "", "")

    def set_state(self, state: str, seconds: float | None, detail: str, hint: str) -> None:
        self.state = state
        self.icon.setPixmap(step_icon(state).pixmap(ICON_SIZE, ICON_SIZE))
        self.title.setEnabled(state != PENDING)
        font = self.title.font()
        font.setBold(state in (RUNNING, FAILED_STEP))
        self.title.setFont(font)
        self.time.setText("" if seconds is None else seconds_text(seconds))
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.setAccessibleName(f"{self.title.text()}: {state}")

    def add_action(self, text: str, slot: Callable[[], Any], icon_name: str | None = None) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setAutoRaise(True)
        if icon_name:
            button.setIcon(icons.icon(icon_name))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.clicked.connect(slot)
        self.actions.addWidget(button)
        return button


class FieldsTable(QTableWidget):
    """What Pipedrive holds now for each mapped value: field, value, where it came from."""

    COLUMNS = ("Pipedrive field", "Value", "From")

    def __init__(self) -> None:
        super().__init__(0, len(self.COLUMNS))
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.setAccessibleName("Fields in Pipedrive")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)

    def show_checks(self, checks: list[FieldCheck]) -> None:
        self.setRowCount(len(checks))
        bad = theme.BAD.colour()
        for row, check in enumerate(checks):
            state = {True: DONE, False: FAILED_STEP, None: PENDING}[check.arrived]
            name = QTableWidgetItem(step_icon(state), f"{check.record}: {check.field}")
            value = QTableWidgetItem(check.value or "(empty)")
            source = QTableWidgetItem(check.source)
            tip = check.note
            if check.arrived is False:
                tip = f"Expected {check.expected or 'a value'}. {check.note}".strip()
                for item in (name, value):
                    item.setForeground(bad)
            for column, item in enumerate((name, value, source)):
                item.setToolTip(tip)
                self.setItem(row, column, item)
        self.setVisible(bool(checks))
        height = self.horizontalHeader().height() + sum(self.rowHeight(r) for r in range(len(checks)))
        self.setFixedHeight(height + 2 * self.frameWidth())

    def rows(self) -> list[tuple[str, str, str]]:
        return [
            (self.item(r, 0).text(), self.item(r, 1).text(), self.item(r, 2).text()) for r in range(self.rowCount())
        ]


class ProgressPage(QWizardPage):
    def __init__(self, wizard: TestReferralWizard) -> None:
        super().__init__()
        self.test_wizard = wizard
        self.setTitle("Sending the test referral")
        self.setSubTitle("Each step shows as it happens. The sync sends the referral exactly as a real one.")
        self.finished = False
        self.ok = False
        self.rows: dict[str, StepRow] = {}
        self.started: dict[str, float] = {}
        self.fix_button: QToolButton | None = None
        self.bar = QProgressBar()
        self.bar.setRange(0, len(RUN_STEPS))
        self.bar.setFormat("%v of %m steps")
        self.bar.setAccessibleName("Progress")
        self.steps = QVBoxLayout()
        self.steps.setSpacing(2)
        self.fields_title = _bold(QLabel("Fields in Pipedrive"))
        self.fields = FieldsTable()
        body = QWidget()
        body_column = QVBoxLayout(body)
        body_column.setContentsMargins(0, 0, 4, 0)
        body_column.addLayout(self.steps)
        body_column.addSpacing(6)
        body_column.addWidget(self.fields_title)
        body_column.addWidget(self.fields)
        body_column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.problem = MessagePanel()
        column = QVBoxLayout(self)
        column.addWidget(self.bar)
        column.addWidget(scroll, 1)
        column.addWidget(self.problem)
        self.ticker = QTimer(self)
        self.ticker.setInterval(TICK_MS)
        self.ticker.timeout.connect(self._tick)
        wizard.stepUpdated.connect(self.show_update)

    def initializePage(self) -> None:
        trial = self.test_wizard.trial
        assert trial is not None
        mode = trial.settings.mode
        for row in self.rows.values():
            row.deleteLater()
        self.rows = {}
        self.started = {}
        for step in RUN_STEPS:
            row = StepRow(step, step_title(step, mode))
            self.rows[step] = row
            self.steps.addWidget(row)
        self.bar.setValue(0)
        self.problem.clear()
        self.fix_button = None
        self.fields_title.hide()
        self.fields.hide()
        self.finished = self.ok = False
        self.ticker.start()
        self.test_wizard.start_run()

    def show_update(self, update: StepUpdate) -> None:
        row = self.rows.get(update.step)
        if row is None:
            return
        if update.state == RUNNING:
            self.started.setdefault(update.step, time.monotonic() - update.seconds)
        row.set_state(update.state, update.seconds, update.detail, update.hint if update.state == FAILED_STEP else "")
        self._add_links(row, update)
        self.bar.setValue(sum(1 for r in self.rows.values() if r.state == DONE))
        if "fields" in update.data:
            self.fields.show_checks(update.data["fields"])
            self.fields_title.show()

    def _add_links(self, row: StepRow, update: StepUpdate) -> None:
        data, controller = update.data, self.test_wizard.controller
        if update.state == FAILED_STEP:
            if data.get("action") == RESUME:
                self.fix_button = row.add_action("Resume syncing", self.test_wizard.resume_sync, "resume")
            elif update.settings_page is not None:
                title = PAGE_TITLES[update.settings_page]
                self.fix_button = row.add_action(f"Open {title}", lambda: self.test_wizard.open_settings_page(title))
            return
        if update.state != DONE:
            return
        if update.step == REFERRER and data.get("url"):
            url = str(data["url"])
            row.add_action("Copy referral link", lambda: QGuiApplication.clipboard().setText(url), "copy")
        elif update.step == PERSON and data.get("person_id") is not None:
            person_id = data["person_id"]
            row.add_action(
                "Open in Pipedrive", lambda: controller.open_in_pipedrive("person", person_id), "open-external"
            )
        elif update.step == ITEM and data.get("id") is not None:
            kind, item_id = str(data["kind"]), data["id"]
            row.add_action("Open in Pipedrive", lambda: controller.open_in_pipedrive(kind, item_id), "open-external")

    def _tick(self) -> None:
        """Running steps count their seconds up while the sync works."""
        now = time.monotonic()
        for step, row in self.rows.items():
            if row.state == RUNNING and step in self.started:
                row.time.setText(seconds_text(now - self.started[step]))

    def run_finished(self, ok: bool) -> None:
        self.finished, self.ok = True, ok
        self.ticker.stop()
        trial = self.test_wizard.trial
        if ok:
            self.problem.show_message(SUCCESS, "The test referral reached Pipedrive.", "Every step worked.")
        elif trial is not None:
            failed = next((r for r in self.rows.values() if r.state == FAILED_STEP), None)
            where = f" at “{failed.title.text()}”" if failed is not None else ""
            left = "Press Next to see what exists and to remove it." if trial.cleanup_items() else ""
            self.problem.show_message(ERROR, f"The test stopped{where}.", left or "Nothing was created.")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.finished

    def nextId(self) -> int:
        trial = self.test_wizard.trial
        watched = trial is not None and rules.needs_watch(trial.settings.qualification)
        return QUALIFY_PAGE if self.ok and watched else SUMMARY_PAGE


# --- page 3: qualification --------------------------------------------------------------------------------


class QualifyPage(QWizardPage):
    def __init__(self, wizard: TestReferralWizard) -> None:
        super().__init__()
        self.test_wizard = wizard
        self.setTitle("Qualification")
        self.setSubTitle("When the lead or deal converts, the sync qualifies the referral in Referral Factory.")
        self.rule = _bold(wrapped_label())
        self.todo = wrapped_label()
        self.wait_button = QPushButton("&Wait for qualification")
        self.wait_button.clicked.connect(self.wait)
        self.salesperson = QPushButton("Act as the &salesperson (demo)")
        self.salesperson.setToolTip("Do in the demo's Pipedrive what the rule waits for.")
        self.salesperson.clicked.connect(self.act)
        self.salesperson.setVisible(wizard.is_demo())
        self.busy = BusyIndicator("Waiting…")
        self.result = MessagePanel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.wait_button)
        buttons.addWidget(self.salesperson)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.addWidget(self.rule)
        column.addWidget(self.todo)
        column.addLayout(buttons)
        column.addWidget(self.busy)
        column.addWidget(self.result)
        column.addWidget(
            hint_label(
                "You can also close this window: the sync keeps watching, and the referral qualifies when "
                "the rule matches. Referral Factory's own integration can take up to 30 minutes; rf-desktop "
                "looks more often."
            )
        )
        column.addStretch(1)
        self.waiting_since = 0.0
        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._tick)
        wizard.stepUpdated.connect(self._on_update)

    def initializePage(self) -> None:
        trial = self.test_wizard.trial
        assert trial is not None
        self.rule.setText(rules.describe(trial.settings.qualification, trial.schema))
        self.todo.setText(trial.what_to_do())
        self.result.clear()
        self.busy.stop()
        self.wait_button.setEnabled(True)

    def wait(self) -> None:
        self.wait_button.setEnabled(False)
        self.result.clear()
        self.waiting_since = time.monotonic()
        self.busy.start("Waiting for the qualification… 0:00")
        self.clock.start()
        self.test_wizard.tasks.spawn("wait", self.test_wizard.wait_for_qualification())

    def act(self) -> None:
        if not self.test_wizard.tasks.running("wait"):
            self.wait()
        self.salesperson.setEnabled(False)
        self.test_wizard.tasks.spawn("salesperson", self.test_wizard.act_as_salesperson())

    def _tick(self) -> None:
        seconds = int(time.monotonic() - self.waiting_since)
        self.busy.start(f"Waiting for the qualification… {seconds // 60}:{seconds % 60:02d}")

    def _on_update(self, update: StepUpdate) -> None:
        if update.step != QUALIFIED_STEP or update.state == RUNNING:
            return
        self.clock.stop()
        self.busy.stop()
        self.wait_button.setEnabled(True)
        self.salesperson.setEnabled(True)
        kind = {DONE: SUCCESS, FAILED_STEP: WARNING}.get(update.state, INFO)
        title = "The referral is qualified." if update.state == DONE else update.detail
        self.result.show_message(kind, title, update.detail if update.state == DONE else update.hint)

    def cleanupPage(self) -> None:
        self.stop_waiting()

    def validatePage(self) -> bool:
        self.stop_waiting()
        return True

    def stop_waiting(self) -> None:
        self.test_wizard.tasks.cancel("wait", "salesperson")
        self.clock.stop()
        self.busy.stop()


# --- page 4: summary --------------------------------------------------------------------------------------


class SummaryPage(QWizardPage):
    def __init__(self, wizard: TestReferralWizard) -> None:
        super().__init__()
        self.test_wizard = wizard
        self.setTitle("Summary")
        self.setSubTitle("Copy it for your records or for support. Clean up removes what the test created.")
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Summary")
        self.text.setFrameShape(QFrame.Shape.StyledPanel)
        self.copy_button = QPushButton(icons.icon("copy"), "&Copy")
        self.copy_button.clicked.connect(self.copy)
        self.again_button = QPushButton(icons.icon("send"), "&Run again")
        self.again_button.clicked.connect(wizard.run_again)
        self.cleanup_button = QPushButton("C&lean up…")
        self.cleanup_button.clicked.connect(self.clean_up)
        self.busy = BusyIndicator("Removing the test records…")
        self.result = MessagePanel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.again_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cleanup_button)
        column = QVBoxLayout(self)
        column.addWidget(self.text, 1)
        column.addLayout(buttons)
        column.addWidget(self.busy)
        column.addWidget(self.result)
        wizard.stepUpdated.connect(self._on_update)

    def initializePage(self) -> None:
        self.result.clear()
        self.refresh()

    def refresh(self) -> None:
        trial = self.test_wizard.trial
        if trial is None:
            return
        self.text.setPlainText(trial.summary())
        self.cleanup_button.setEnabled(bool(trial.cleanup_items()) and not self.test_wizard.tasks.running("cleanup"))

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())
        self.result.show_message(INFO, "The summary is on the clipboard.")

    def clean_up(self) -> None:
        self.cleanup_button.setEnabled(False)
        self.test_wizard.tasks.spawn("cleanup", self.test_wizard.clean_up())

    def _on_update(self, update: StepUpdate) -> None:
        if update.step != CLEANED:
            return
        if update.state == RUNNING:
            self.busy.start(update.detail)
            return
        self.busy.stop()
        self.result.show_message(SUCCESS if update.state == DONE else WARNING, update.detail, update.hint)
        self.refresh()


# --- the wizard -------------------------------------------------------------------------------------------


class TestReferralWizard(QWizard):
    """`TestReferralWizard(controller)`: open it from the window, the tray or the end of the set-up."""

    __test__ = False  # a window, not a test case (pytest collects classes named Test*)

    stepUpdated = Signal(object)  # StepUpdate
    openSettingsPage = Signal(str)  # "Connections", "Mapping" or "Rules"

    def __init__(
        self,
        controller: AppController,
        parent: QWidget | None = None,
        *,
        ui_settings: QSettings | None = None,
        trial_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.ui_settings = ui_settings if ui_settings is not None else QSettings()
        # timeouts and polling for TrialRun (tests make them short)
        self.trial_options = dict(trial_options or {})
        self.qualification_timeout = QUALIFICATION_TIMEOUT
        self.tasks = OwnedTasks(controller, self)
        self.trial: TrialRun | None = None
        # both tokens were read from the keychain (planning says which one is missing)
        self.tokens_read = False
        self.send_when_ready = False
        self.stopped_box: QMessageBox | None = None
        self.setWindowTitle("Send a test referral")
        self.setWindowIcon(icons.icon("send"))
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "&Send test referral")
        self.plan_page = PlanPage(self)
        self.progress_page = ProgressPage(self)
        self.qualify_page = QualifyPage(self)
        self.summary_page = SummaryPage(self)
        for page_id, page in enumerate((self.plan_page, self.progress_page, self.qualify_page, self.summary_page)):
            self.setPage(page_id, page)
        self.resize(760, 680)
        self._watching = False

    def alive(self) -> bool:
        """False once Qt has deleted the window: background work that outlives it must not touch it."""
        return shiboken6.isValid(self)

    def showEvent(self, event: QShowEvent) -> None:
        self._watch_configuration(True)
        super().showEvent(event)

    def done(self, result: int) -> None:
        self._watch_configuration(False)
        super().done(result)

    def _watch_configuration(self, on: bool) -> None:
        """Plan again when the settings, the schema or the sync's state change, while the wizard is open."""
        if on == self._watching:
            return
        self._watching = on
        for signal in (self.controller.settingsChanged, self.controller.schemaChanged, self.controller.stateChanged):
            if on:
                signal.connect(self._configuration_changed)
            else:
                signal.disconnect(self._configuration_changed)

    # --- the run ---------------------------------------------------------------------------------------

    def email_base(self) -> str:
        saved = self.ui_settings.value(EMAIL_KEY, "", type=str)
        return saved if isinstance(saved, str) else ""

    def remember_email_base(self, text: str) -> None:
        self.ui_settings.setValue(EMAIL_KEY, text)

    def mode(self) -> str:
        return self.trial.settings.mode if self.trial is not None else "lead"

    def is_demo(self) -> bool:
        return self.controller.demo and self.controller.sandbox is not None

    async def load_tokens(self) -> None:
        """Both tokens, read from the keychain in an executor (an unlock prompt must not freeze the
        window), then a fresh test referral to plan."""
        for name in TOKEN_NAMES:
            await self.controller.account.read_token(name)
        self.tokens_read = True
        if not self.alive():
            return
        trial = self.new_trial()
        self.plan_page.refresh()
        await trial.load_campaign_names()
        if self.alive() and trial is self.trial:
            self.plan_page.refresh()

    def new_trial(self) -> TrialRun:
        self.trial = TrialRun(
            self.controller.account,
            self.controller.engine,
            email_base=self.plan_page.email.text().strip() or self.email_base() or DEFAULT_EMAIL_BASE,
            campaign_id=self.plan_page.campaign.currentData(),
            on_update=self._publish,
            on_event=self._forward,
            **self.trial_options,
        )
        return self.trial

    def _publish(self, update: StepUpdate) -> None:
        # a cleanup started from the "stopped" message may report after the window is gone
        if self.alive():
            self.stepUpdated.emit(update)

    def _forward(self, event: Event) -> None:
        """The run's own log rows and referral changes reach the window like the sync's."""
        if isinstance(event, LogAdded):
            self.controller.logAdded.emit(event.row)
        elif isinstance(event, ReferralChanged):
            self.controller.referralChanged.emit(event.rf_user_id)

    def start_run(self) -> None:
        trial = self.trial
        assert trial is not None
        self.tasks.spawn("run", self._run(trial))

    async def _run(self, trial: TrialRun) -> None:
        ok = False
        try:
            ok = await trial.run()
        finally:
            if self.alive() and trial is self.trial:
                self.progress_page.run_finished(ok)

    async def wait_for_qualification(self) -> None:
        assert self.trial is not None
        await self.trial.wait_for_qualification(self.qualification_timeout)

    async def act_as_salesperson(self) -> None:
        assert self.trial is not None
        try:
            sandbox = self.controller.sandbox
            referral = self.trial.test_referral()
            if sandbox is None or referral is None:
                raise RuntimeError("There is no test referral for the salesperson to act on.")
            text = await SandboxAdmin(sandbox.admin_url).act_as_salesperson(referral, self.trial.settings.qualification)
            self.trial.someone_acted(text)
        except Exception as error:  # the demo's sandbox refused: say so on the page
            if self.alive():
                self.qualify_page.result.show_message(WARNING, "The demo's salesperson could not act.", str(error))
            return
        if self.alive():
            self.qualify_page.result.show_message(INFO, text)

    async def confirm_cleanup(self, items: list[CleanupItem], kept: list[str]) -> bool:
        """Ask before deleting, listing exactly what goes (and what stays)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Remove the test records?", "", parent=self)
        box.setText(f"Remove these {len(items)} records created by the test referral?")
        listing = "\n".join(f"• {item.label}" for item in items)
        if kept:
            listing += "\n\nKept:\n" + "\n".join(f"• {line}" for line in kept)
        box.setInformativeText(listing + "\n\nThis cannot be undone.")
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        await run_dialog(box)
        return box.clickedButton() is remove

    async def clean_up(self) -> None:
        trial = self.trial
        assert trial is not None
        items = trial.cleanup_items()
        if not items or not await self.confirm_cleanup(items, trial.kept_items()):
            if self.alive():
                self.summary_page.refresh()
            return
        await trial.cleanup()

    def run_again(self) -> None:
        """A new test referral with new addresses, sent as soon as the check passes."""
        self.tasks.cancel("run", "wait", "salesperson")
        self.trial = None
        self.send_when_ready = True
        self.restart()

    # --- fixing things ---------------------------------------------------------------------------------

    def resume_sync(self) -> None:
        self.controller.resume()
        self._configuration_changed()

    def open_settings_page(self, title: str) -> None:
        meta = self.metaObject()
        signal = meta.method(meta.indexOfSignal("openSettingsPage(QString)"))
        if self.isSignalConnected(signal):
            self.openSettingsPage.emit(title)
            return
        window = next((w for w in QApplication.topLevelWidgets() if hasattr(w, "show_page_named")), None)
        if window is not None:
            window.show_page_named(title)
            window.bring_to_front()

    def _configuration_changed(self, *_args: object) -> None:
        if self.currentId() == PLAN_PAGE:
            self.plan_page.refresh()

    # --- closing ---------------------------------------------------------------------------------------

    def reject(self) -> None:
        """Cancel, Escape or the close button: a run in progress stops, and the owner hears what exists."""
        run = self.tasks.running("run")
        self.tasks.cancel("run", "wait", "salesperson")
        trial = self.trial
        super().reject()
        if run and trial is not None:
            QTimer.singleShot(0, lambda: self._tell_what_exists(trial))

    def _tell_what_exists(self, trial: TrialRun) -> None:
        items = trial.cleanup_items()
        if not items:
            return
        box = QMessageBox(QMessageBox.Icon.Information, "Test referral stopped", "")
        box.setText("The test referral was stopped before it finished. It created:")
        box.setInformativeText(
            "\n".join(f"• {item.label}" for item in items)
            + "\n\nRemove them now? If you keep them, the sync still sends the test referral to Pipedrive, "
            "marked as a test."
        )
        remove = box.addButton("Remove them", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep them", QMessageBox.ButtonRole.RejectRole)
        box.setWindowModality(Qt.WindowModality.NonModal)

        def answered(_result: int) -> None:
            if box.clickedButton() is remove:
                self.controller.spawn(f"test-referral-cleanup.{id(trial)}", trial.cleanup())

        box.finished.connect(answered)
        self.stopped_box = box
        box.open()
