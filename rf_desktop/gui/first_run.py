"""The first-run set-up: connect both accounts, pick the campaign, map the required fields, choose the
rule; or try the demo instead.

It reuses the settings pages' pieces over a draft of its own that is saved only at the end, because a
half-finished set-up is not a configuration the sync could run on. The caller reads `outcome`:
CONFIGURED (settings saved, sync started), DEMO ("Try the demo instead") or CANCELLED.
`exec()`/`finished` give the same as a result code: Accepted, DEMO_RESULT or Rejected.

The API addresses (the real services by default) wait under Advanced on the connect step, as on the
Connections page, for an owner who was given another address (a proxy, a regional endpoint). Cancel asks
first; the caller then opens the window (not syncing) or returns to the demo the owner came from.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QMessageBox, QVBoxLayout, QWidget, QWizard, QWizardPage

from rf_desktop.core.config import Issue
from rf_desktop.core.instance_lock import AlreadySyncingError
from rf_desktop.core.mapping_setup import auto_map_referral_fields
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.pages.connections import (
    PIPEDRIVE,
    REFERRAL_FACTORY,
    BaseUrlFields,
    CampaignPicker,
    CheckResult,
    TokenBox,
)
from rf_desktop.gui.pages.mapping import CreateFieldsBox, MappingGrid, TitleEditor
from rf_desktop.gui.pages.rules import ModeChooser, QualificationChooser
from rf_desktop.gui.widgets.form_helpers import (
    ERROR,
    BusyIndicator,
    Fold,
    MessagePanel,
    buddy_label,
    hint_label,
    wrapped_label,
)
from rf_desktop.gui.widgets.settings_draft import (
    PROBLEMS,
    OwnedTasks,
    SettingsDraft,
    page_of,
    problem_text,
    refresh_schema,
)

CONFIGURED = "configured"
DEMO = "demo"
CANCELLED = "cancelled"
DEMO_RESULT = 2


class _Step(QWizardPage):
    """A step that is complete when the draft has no errors on its settings page's sections."""

    checked_page = ""

    def __init__(self, draft: SettingsDraft, title: str, subtitle: str) -> None:
        super().__init__()
        self.draft = draft
        self.setTitle(title)
        self.setSubTitle(subtitle)
        self.column = QVBoxLayout(self)
        draft.issuesChanged.connect(self.completeChanged)

    def blocking(self) -> list[Issue]:
        return [i for i in self.draft.errors() if page_of(i) == self.checked_page and self.covers(i)]

    def covers(self, issue: Issue) -> bool:
        return True

    def isComplete(self) -> bool:
        return not self.blocking()


class ConnectStep(_Step):
    def __init__(self, controller: AppController, draft: SettingsDraft) -> None:
        super().__init__(
            draft,
            "Connect your accounts",
            "Paste each API token and press Test connection. Tokens are kept in your system's keychain "
            "(without one, for this session only).",
        )
        self.referral_factory = TokenBox(controller, draft, REFERRAL_FACTORY)
        self.pipedrive = TokenBox(controller, draft, PIPEDRIVE)
        for box in (self.referral_factory, self.pipedrive):
            box.tested.connect(self.completeChanged)
            box.tokenChanged.connect(self.completeChanged)
            self.column.addWidget(box)
        self.base_urls = BaseUrlFields(draft)
        self.advanced = Fold("&Advanced", self.base_urls)
        self.column.addWidget(self.advanced)
        self.column.addStretch(1)

    def isComplete(self) -> bool:
        return all(_tested_ok(box) for box in (self.referral_factory, self.pipedrive))


class CampaignStep(_Step):
    checked_page = "Connections"

    def __init__(self, controller: AppController, draft: SettingsDraft, connect: ConnectStep) -> None:
        super().__init__(
            draft,
            "Choose the campaign",
            "Whose sign-ups go to Pipedrive, and whether people who already signed up go too.",
        )
        self.picker = CampaignPicker(controller, draft)
        connect.referral_factory.tested.connect(self._tested)
        self.column.addWidget(self.picker)

    def _tested(self, result: CheckResult) -> None:
        if result.ok:
            self.picker.set_campaigns(self.picker.controller.account.cached_campaigns())


class MappingStep(_Step):
    checked_page = "Mapping"

    def __init__(self, controller: AppController, draft: SettingsDraft) -> None:
        super().__init__(
            draft,
            "Map the required fields",
            "Pipedrive needs a name, an email, a title, and the Referral Code on each lead or deal.",
        )
        self.controller = controller
        self.tasks = OwnedTasks(controller, self)
        self.busy = BusyIndicator("Fetching your Pipedrive fields…")
        self.error_panel = MessagePanel()
        self.create_fields = CreateFieldsBox(controller, draft)
        self.grid = MappingGrid(controller, draft, required_only=True)
        self.title_editor = TitleEditor(controller, draft)
        self.column.addWidget(self.busy)
        self.column.addWidget(self.error_panel)
        self.column.addWidget(self.create_fields)
        self.column.addWidget(self.grid)
        self.column.addWidget(buddy_label("&Title of each lead or deal:", self.title_editor.combo))
        self.column.addWidget(self.title_editor)
        self.column.addWidget(
            hint_label("More fields, default values and duplicates can be set later on the Mapping page.")
        )
        self.column.addStretch(1)
        controller.schemaLoading.connect(self._loading)
        controller.schemaChanged.connect(self._use_existing_fields)

    def covers(self, issue: Issue) -> bool:
        # only what this step shows: the required mappings and the title
        return issue.path == "mappings" or issue.path == "title" or issue.path.endswith(".target")

    def initializePage(self) -> None:
        self.tasks.spawn("schema", self._refresh())

    async def _refresh(self) -> None:
        self.error_panel.clear()
        try:
            await refresh_schema(self.controller, self.draft)
        except PROBLEMS as error:
            self.error_panel.show_message(ERROR, *problem_text(error))

    def _loading(self, loading: bool) -> None:
        self.busy.set_busy(loading)
        self.grid.set_loading(loading)

    def _use_existing_fields(self) -> None:
        """An account that already has a Referral Code field (and the optional referral fields) gets
        them mapped right away."""
        schema = self.controller.schema()
        if schema is not None:
            self.draft.edit(lambda s: auto_map_referral_fields(s, schema))


class RuleStep(_Step):
    checked_page = "Rules"

    def __init__(self, draft: SettingsDraft) -> None:
        super().__init__(
            draft,
            "Choose what to create and when a referral succeeds",
            "A lead or a deal for each person invited, and when to qualify the referral in Referral Factory.",
        )
        self.mode = ModeChooser(draft)
        self.qualification = QualificationChooser(draft)
        self.column.addWidget(self.mode)
        self.column.addWidget(self.qualification)
        self.column.addStretch(1)


class FinishStep(_Step):
    def __init__(self, draft: SettingsDraft) -> None:
        super().__init__(
            draft,
            "Ready to sync",
            "Press Finish to save the settings and start sending referrals to Pipedrive.",
        )
        self.summary = wrapped_label()
        self.panel = MessagePanel()
        # Referral Factory's guide ends with a manual test; offer ours before real referrals come
        self.send_test = QCheckBox("Send a &test referral when the window opens")
        self.send_test.setChecked(True)
        self.column.addWidget(self.summary)
        self.column.addWidget(self.send_test)
        self.column.addWidget(self.panel)
        self.column.addStretch(1)

    def initializePage(self) -> None:
        settings = self.draft.settings
        record = "a lead" if settings.mode == "lead" else "a deal"
        count = len(settings.referral_factory.campaign_ids)
        campaigns = f"{count} campaign" + ("" if count == 1 else "s")
        self.summary.setText(
            f"Each person invited through {campaigns} becomes a Pipedrive person and {record}. "
            "You can change everything later in the Connections, Mapping and Rules pages."
        )

    def isComplete(self) -> bool:
        return not self.draft.errors()


class FirstRunDialog(QWizard):
    """The guided set-up. `outcome` is CONFIGURED, DEMO or CANCELLED once it is closed."""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.outcome = CANCELLED
        self.leave_box: QMessageBox | None = None  # "Leave the set-up?", while it is asked
        self.send_test_referral = False  # the owner asked for a test referral once the window is open
        self.setWindowTitle("Set up rf-desktop")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.HaveCustomButton1, True)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setButtonText(QWizard.WizardButton.CustomButton1, "Try the &demo instead")
        self.customButtonClicked.connect(self._demo)
        self.draft = SettingsDraft(controller, autosave=False, parent=self)
        welcome = QWizardPage()
        welcome.setTitle("Welcome to rf-desktop")
        welcome_column = QVBoxLayout(welcome)
        welcome_column.addWidget(
            wrapped_label(
                "rf-desktop sends each person invited through your Referral Factory campaign to Pipedrive, "
                "as a person plus a lead or a deal, and qualifies the referral when that lead or deal "
                "converts."
            )
        )
        welcome_column.addWidget(
            hint_label(
                "You need your Referral Factory API token and your Pipedrive API token. Not ready yet? "
                "Try the demo: it runs on a built-in simulation and touches no real account."
            )
        )
        welcome_column.addStretch(1)
        self.connect_step = ConnectStep(controller, self.draft)
        self.campaign_step = CampaignStep(controller, self.draft, self.connect_step)
        self.mapping_step = MappingStep(controller, self.draft)
        self.rule_step = RuleStep(self.draft)
        self.finish_step = FinishStep(self.draft)
        for page in (welcome, self.connect_step, self.campaign_step, self.mapping_step, self.rule_step):
            self.addPage(page)
        self.addPage(self.finish_step)

    def _demo(self, which: int) -> None:
        if which == QWizard.WizardButton.CustomButton1.value:
            self.outcome = DEMO
            self.done(DEMO_RESULT)

    def accept(self) -> None:
        """Finish: save the settings (the controller validates them once more) and start the sync."""
        errors = self.draft.flush()
        if errors:
            self.finish_step.panel.show_message(ERROR, "The settings could not be saved.", errors[0].message)
            return
        try:
            if self.controller.engine is None:
                self.controller.start_engine()
            else:
                self.controller.sync_now()
        except AlreadySyncingError as error:
            self.finish_step.panel.show_message(
                ERROR, "The settings are saved, but the sync did not start.", str(error)
            )
            return
        self.outcome = CONFIGURED
        self.send_test_referral = self.finish_step.send_test.isChecked()
        super().accept()

    def reject(self) -> None:
        """Cancel, Escape or the close box: past the welcome page, only once the owner confirms."""
        if self.leave_box is not None:
            self.leave_box.raise_()
            return
        if self.currentId() <= 0:
            self._leave()
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Set up rf-desktop", "Leave the set-up?", parent=self)
        box.setInformativeText(
            "Nothing is sent to Pipedrive. Tokens that passed their test stay in your keychain; the rest of "
            "what you chose here is not kept. You can finish on the Connections, Mapping and Rules pages."
        )
        leave = box.addButton("&Leave the set-up", QMessageBox.ButtonRole.AcceptRole)
        stay = box.addButton("&Continue setting up", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stay)
        box.setEscapeButton(stay)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda _result: self._leave_answered(box, leave))
        self.leave_box = box
        box.open()

    def _leave_answered(self, box: QMessageBox, leave: QAbstractButton) -> None:
        self.leave_box = None
        box.deleteLater()
        if box.clickedButton() is leave:
            self._leave()

    def _leave(self) -> None:
        self.outcome = CANCELLED
        super().reject()


def _tested_ok(box: TokenBox) -> bool:
    return box.last_check is not None and box.last_check.ok and bool(box.source)
