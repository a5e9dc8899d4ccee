"""The Connections page: the two API tokens, testing them, the campaigns to sync and the base URLs.

Its pieces (`TokenBox`, `CampaignPicker`, `BaseUrlFields`) take the controller and a settings draft, so the
first-run dialog reuses them with its own draft. Without a usable keychain a token box offers to keep the
tokens for this session only, says how to get a keychain, and looks again on "Test again". When a token
or address stopped the sync, the page says which service at the top, until a fix tests fine.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date
from typing import Any

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDateEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core.config import DEFAULT_PD_BASE_URL, DEFAULT_RF_BASE_URL
from rf_desktop.core.connections import PDCheck, RFCheck
from rf_desktop.core.secrets import (
    DESKTOP_KEYCHAIN_HINT,
    DESKTOP_LOCKED_HINT,
    ENV_VARS,
    GET_A_KEYCHAIN,
    PD_TOKEN,
    RF_TOKEN,
    KeychainLockedError,
    KeychainUnavailableError,
    SecretsError,
)
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.widgets.form_helpers import (
    ERROR,
    INFO,
    SUCCESS,
    BusyIndicator,
    Fold,
    IssueLabel,
    MessagePanel,
    buddy_label,
    hint_label,
)
from rf_desktop.gui.widgets.settings_draft import (
    PROBLEMS,
    DraftPage,
    OwnedTasks,
    SettingsDraft,
    refresh_schema,
)
from rf_desktop.gui.widgets.sync_status import problem_title

# The campaigns seen at the last successful test, so the list shows without calling Referral Factory.


@dataclass(frozen=True)
class Service:
    token_name: str
    label: str
    where_to_find: str
    base_url_path: str
    # distinct mnemonics for the two boxes on one page
    token_label: str
    test_label: str


REFERRAL_FACTORY = Service(
    RF_TOKEN,
    "Referral Factory",
    "In Referral Factory: Campaign settings → Integrations and API → API & Webhooks → Copy API Key.",
    "referral_factory.base_url",
    "API &token:",
    "&Test connection",
)
PIPEDRIVE = Service(
    PD_TOKEN,
    "Pipedrive",
    "In Pipedrive: Settings → Personal preferences → API → copy your personal API token.",
    "pipedrive.base_url",
    "API t&oken:",
    "Test co&nnection",
)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    title: str
    detail: str = ""


def last_four(token: str) -> str:
    return token[-4:] if len(token) > 8 else ""


class TokenBox(QGroupBox):
    """One service's token and its "Test connection" button.

    Before a token is stored: a password field (Enter tests it, and a token that works is stored).
    Once stored: "Stored in the keychain (…last 4)" with Replace and Remove; the token is never shown.
    Keychain problems show in the panel with what to do about them."""

    tokenChanged = Signal()
    tested = Signal(object)  # CheckResult, plus the check itself in `last_check`

    def __init__(
        self, controller: AppController, draft: SettingsDraft, service: Service, parent: QWidget | None = None
    ) -> None:
        super().__init__(service.label, parent)
        self.controller = controller
        self.draft = draft
        self.service = service
        self.tasks = OwnedTasks(controller, self)
        self.source: str | None = None
        self.testing = False
        self._attempt = 0  # a cancelled test must not end the state of the one started after it
        self.last_check: RFCheck | PDCheck | None = None

        self.entry = QLineEdit()
        self.entry.setEchoMode(QLineEdit.EchoMode.Password)
        self.entry.setPlaceholderText("Paste your API token")
        self.entry.setClearButtonEnabled(True)
        self.entry.returnPressed.connect(self.start_test)
        self.entry.textChanged.connect(lambda _text: self._sync_buttons())
        self.save_button = QPushButton("&Save token")
        self.save_button.clicked.connect(self._save_typed)
        self.cancel_replace = QPushButton("Keep the stored token")
        self.cancel_replace.clicked.connect(lambda: self._show_stored(True))
        entry_row = QHBoxLayout()
        entry_row.addWidget(self.entry, 1)
        entry_row.addWidget(self.save_button)
        entry_row.addWidget(self.cancel_replace)
        self.entry_page = QWidget()
        entry_column = QVBoxLayout(self.entry_page)
        entry_column.setContentsMargins(0, 0, 0, 0)
        entry_column.addLayout(entry_row)
        entry_column.addWidget(hint_label(service.where_to_find))

        self.stored_label = QLabel()
        self.stored_label.setWordWrap(True)
        self.replace_button = QPushButton("&Replace…")
        self.replace_button.clicked.connect(self._replace)
        self.remove_button = QPushButton("Re&move")
        self.remove_button.clicked.connect(self._remove)
        self.stored_page = QWidget()
        stored_row = QHBoxLayout(self.stored_page)
        stored_row.setContentsMargins(0, 0, 0, 0)
        stored_row.addWidget(self.stored_label, 1)
        stored_row.addWidget(self.replace_button)
        stored_row.addWidget(self.remove_button)

        self.token_label = buddy_label(service.token_label, self.entry)

        self.test_button = QPushButton(service.test_label)
        self.test_button.clicked.connect(self._toggle_test)
        self.busy = BusyIndicator("Testing…")
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.busy)
        test_row.addStretch(1)
        self.keychain_panel = MessagePanel()
        # no keychain is no dead end: keep the tokens in memory for now, and look again once there is one
        self.session_button = QPushButton("Keep tokens for this session only")
        self.session_button.clicked.connect(controller.keep_tokens_for_session)
        self.recheck_button = QPushButton("Test again")
        self.recheck_button.clicked.connect(lambda: self.tasks.spawn("keychain", self._recheck_keychain()))
        self.keychain_actions = QWidget()
        actions_row = QHBoxLayout(self.keychain_actions)
        actions_row.setContentsMargins(0, 0, 0, 0)
        actions_row.addWidget(self.session_button)
        actions_row.addWidget(self.recheck_button)
        actions_row.addStretch(1)
        self.keychain_actions.hide()
        self.result_panel = MessagePanel()

        token_column = QVBoxLayout()
        token_column.addWidget(self.entry_page)
        token_column.addWidget(self.stored_page)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_label, 0, Qt.AlignmentFlag.AlignTop)
        token_row.addLayout(token_column, 1)
        column = QVBoxLayout(self)
        column.addLayout(token_row)
        column.addWidget(self.keychain_panel)
        column.addWidget(self.keychain_actions)
        column.addLayout(test_row)
        column.addWidget(self.result_panel)
        self._show_stored(False)
        controller.keychainChanged.connect(lambda: self.tasks.spawn("load", self.load()))
        self.tasks.spawn("load", self.load())

    # --- the token ------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Show whether a token is stored, and where it comes from."""
        try:
            self.source = await self.controller.account.token_source(self.service.token_name)
            token = await self.controller.account.read_token(self.service.token_name) if self.source else None
        except SecretsError as error:
            self._keychain_problem(error)
            self.source = None
            self._show_stored(False)
            return
        self._show_session_only()
        if self.source and token:
            self.stored_label.setText(self._describe_stored(token))
            self._show_stored(True)
        else:
            self._show_stored(False)

    def _describe_stored(self, token: str) -> str:
        tail = last_four(token)
        ending = f" (…{tail})" if tail else ""
        if self.source == "environment":
            variable = ENV_VARS[self.service.token_name]
            return f"Read from the environment variable {variable}{ending}. Unset it to use the keychain."
        if self.source == "session" and self.controller.demo:
            return f"Demo token{ending}, kept in memory for this session only."
        if self.source == "session":
            return f"Kept for this session only{ending}: rf-desktop forgets it when it quits."
        return f"Stored in the keychain{ending}."

    @property
    def showing_stored(self) -> bool:
        return not self.stored_page.isHidden()

    def _show_stored(self, stored: bool) -> None:
        has_stored = bool(self.source)
        self.stored_page.setVisible(stored and has_stored)
        self.entry_page.setVisible(not (stored and has_stored))
        self.token_label.setBuddy(self.replace_button if stored and has_stored else self.entry)
        self.cancel_replace.setVisible(has_stored and not stored)
        from_environment = self.source == "environment"
        for button in (self.replace_button, self.remove_button):
            button.setEnabled(not from_environment)
            button.setToolTip(
                "The environment variable wins over the keychain: change or unset it instead."
                if from_environment
                else ""
            )
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        typed = bool(self.entry.text().strip())
        self.save_button.setEnabled(typed and not self.testing)
        if not self.testing:
            self.test_button.setEnabled(typed or bool(self.source))

    def _replace(self) -> None:
        self.entry.clear()
        self._show_stored(False)
        self.entry.setFocus()

    def _save_typed(self) -> None:
        self.tasks.spawn("store", self._store(self.entry.text()))

    def _remove(self) -> None:
        self.tasks.spawn("store", self._forget())

    async def _store(self, token: str) -> bool:
        try:
            await self.controller.account.set_token(self.service.token_name, token)
        except SecretsError as error:
            self._keychain_problem(error)
            return False
        self.entry.clear()
        await self.load()
        self.tokenChanged.emit()
        return True

    async def _forget(self) -> None:
        try:
            await self.controller.account.remove_token(self.service.token_name)
        except SecretsError as error:
            self._keychain_problem(error)
            return
        self.result_panel.clear()
        await self.load()
        self.tokenChanged.emit()

    def _keychain_problem(self, error: SecretsError) -> None:
        # the advice for someone at a desktop (environment variables are for servers)
        hints = {KeychainUnavailableError: DESKTOP_KEYCHAIN_HINT, KeychainLockedError: DESKTOP_LOCKED_HINT}
        hint = hints.get(type(error), error.hint)
        self.keychain_panel.show_message(ERROR, error.message, hint)
        self.session_button.setVisible(not self.controller.tokens.session_only)
        self.keychain_actions.show()

    def _show_session_only(self) -> None:
        """Say plainly, for as long as it lasts, that the tokens go when rf-desktop quits."""
        if self.controller.demo or not self.controller.tokens.session_only:
            self.keychain_panel.clear()
            self.keychain_actions.hide()
            return
        self.keychain_panel.show_message(
            INFO,
            "Tokens are kept for this session only.",
            f"They are in memory, never in a file, and rf-desktop forgets them when it quits. {GET_A_KEYCHAIN}",
        )
        self.session_button.hide()
        self.keychain_actions.show()

    async def _recheck_keychain(self) -> None:
        try:
            await self.controller.recheck_keychain()
        except SecretsError as error:
            self._keychain_problem(error)

    # --- testing --------------------------------------------------------------------------------------

    def start_test(self) -> None:
        if not self.testing:
            self._toggle_test()

    def _toggle_test(self) -> None:
        """The button starts a test, or cancels the one in flight."""
        if self.testing:
            self.cancel_test()
            self.result_panel.show_message(INFO, "Test cancelled.")
            return
        self.tasks.spawn("test", self._test())

    def cancel_test(self) -> None:
        self._attempt += 1
        self.tasks.cancel("test")
        self._testing_finished()

    async def _test(self) -> None:
        self._attempt += 1
        attempt = self._attempt
        self.testing = True
        self.test_button.setText("Cancel the test")
        self.busy.start()
        self.result_panel.clear()
        self._sync_buttons()
        try:
            result = await self._run_test()
        finally:
            if attempt == self._attempt:
                self._testing_finished()
        self.result_panel.show_message(SUCCESS if result.ok else ERROR, result.title, result.detail)
        self.tested.emit(result)

    def _testing_finished(self) -> None:
        self.testing = False
        self.test_button.setText(self.service.test_label)
        self.busy.stop()
        self._sync_buttons()

    async def _run_test(self) -> CheckResult:
        typed = self.entry.text().strip()
        try:
            token = typed or await self.controller.account.read_token(self.service.token_name) or ""
        except SecretsError as error:
            self._keychain_problem(error)
            return CheckResult(False, "The token could not be read from the keychain.", error.hint)
        base_url = self.draft.get(self.service.base_url_path)
        if self.service is REFERRAL_FACTORY:
            result = await self._check_referral_factory(base_url, token)
        else:
            result = await self._check_pipedrive(base_url, token)
        if result.ok and typed and not await self._store(typed):
            return CheckResult(
                True, result.title, result.detail + "\nThe token works but could not be stored."
            )
        return result

    async def _check_referral_factory(self, base_url: str, token: str) -> CheckResult:
        check = await self.controller.account.check_referral_factory(base_url, token)
        self.last_check = check
        if check.ok:
            self.controller.account.remember_campaigns(check.campaigns)
        return CheckResult(check.ok, check.message, check.hint)

    async def _check_pipedrive(self, base_url: str, token: str) -> CheckResult:
        check = await self.controller.account.check_pipedrive(base_url, token)
        self.last_check = check
        if not check.ok:
            return CheckResult(False, check.message, check.hint)
        self.draft.set("pipedrive.company_domain", check.company_domain or None)
        lines = [f"User: {check.user_name}", f"Company: {check.company_name}"]
        if check.company_domain:
            lines.append(f"Company domain: {check.company_domain}.pipedrive.com")
        return CheckResult(True, check.message, "\n".join(lines))

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        # a layout pass can hide and show a page at once (the first-run wizard does): only a box still
        # hidden once the events are processed was left
        QTimer.singleShot(0, self._cancel_if_left)

    def _cancel_if_left(self) -> None:
        if self.testing and not self.isVisible():
            self.cancel_test()


class CampaignPicker(QWidget):
    """Which campaigns to sync, whom (people invited, people referring), and from when."""

    def __init__(self, controller: AppController, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.draft = draft
        self._loading = False
        self.list = QListWidget()
        self.list.setAccessibleName("Campaigns")
        self.list.itemChanged.connect(self._campaigns_edited)
        self.empty_hint = hint_label("Test the Referral Factory connection to list your campaigns.")
        self.campaigns_issue = IssueLabel("referral_factory.campaign_ids")

        self.invited = QCheckBox("People &invited (the referred friends)")
        self.referring = QCheckBox("People &referring (your customers who share their link)")
        self.invited.toggled.connect(lambda on: self.draft.set("referral_factory.sync_invited", on))
        self.referring.toggled.connect(lambda on: self.draft.set("referral_factory.sync_referring", on))
        self.who_issue = IssueLabel("referral_factory.sync_invited")

        self.backfill = QButtonGroup(self)
        self.backfill_none = QRadioButton("Only people who sign up from &now on")
        self.backfill_all = QRadioButton("&Everyone already in the campaign")
        self.backfill_since = QRadioButton("Everyone &since")
        self.since = QDateEdit()
        self.since.setCalendarPopup(True)
        self.since.setDisplayFormat("yyyy-MM-dd")
        self.since.setMaximumDate(QDate.currentDate())
        self.since.setAccessibleName("Sign-ups since")
        for value, button in (
            ("none", self.backfill_none),
            ("all", self.backfill_all),
            ("since", self.backfill_since),
        ):
            button.setProperty("backfill", value)
            self.backfill.addButton(button)
        self.backfill.buttonToggled.connect(self._backfill_edited)
        self.since.dateChanged.connect(
            lambda _d: self._backfill_edited(self.backfill_since, self.backfill_since.isChecked())
        )
        self.since_issue = IssueLabel("referral_factory.backfill_since")
        since_row = QHBoxLayout()
        since_row.addWidget(self.backfill_since)
        since_row.addWidget(self.since)
        since_row.addStretch(1)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(buddy_label("&Campaigns to sync:", self.list))
        column.addWidget(self.list)
        column.addWidget(self.empty_hint)
        column.addWidget(self.campaigns_issue)
        column.addWidget(QLabel("Send to Pipedrive:"))
        column.addWidget(self.invited)
        column.addWidget(self.referring)
        column.addWidget(self.who_issue)
        column.addWidget(QLabel("People who signed up before rf-desktop was set up:"))
        column.addWidget(self.backfill_none)
        column.addWidget(self.backfill_all)
        column.addLayout(since_row)
        column.addWidget(self.since_issue)
        column.addWidget(
            hint_label("This applies to the first look at a campaign; after that every new sign-up is sent.")
        )
        self.draft.changed.connect(self._load)
        self.draft.issuesChanged.connect(self._show_issues)
        self.set_campaigns(controller.account.cached_campaigns())
        self._load(draft.settings)
        self._show_issues(draft.issues)

    def set_campaigns(self, campaigns: list[dict[str, Any]]) -> None:
        """List these campaigns (checked when chosen); chosen campaigns not in the list stay listed."""
        chosen = set(self.draft.get("referral_factory.campaign_ids"))
        known = {int(c["id"]) for c in campaigns}
        # before the first test only the ids are known; after it, a missing one was deleted or hidden
        status = "not found in Referral Factory" if campaigns else ""
        missing = [{"id": cid, "name": f"Campaign {cid}", "status": status} for cid in sorted(chosen - known)]
        self.list.blockSignals(True)
        self.list.clear()
        for campaign in [*campaigns, *missing]:
            status = campaign.get("status") or ""
            item = QListWidgetItem(f"{campaign['name']}  ({status})" if status else str(campaign["name"]))
            item.setData(Qt.ItemDataRole.UserRole, int(campaign["id"]))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = int(campaign["id"]) in chosen
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.empty_hint.setVisible(not campaigns)
        # tall enough for every campaign up to eight, then it scrolls
        rows = min(max(self.list.count(), 2), 8)
        self.list.setFixedHeight(rows * self.list.sizeHintForRow(0) + 2 * self.list.frameWidth() + 4)

    def campaign_items(self) -> dict[int, QListWidgetItem]:
        return {
            self.list.item(i).data(Qt.ItemDataRole.UserRole): self.list.item(i)
            for i in range(self.list.count())
        }

    def _campaigns_edited(self, _item: QListWidgetItem) -> None:
        chosen = [
            cid for cid, item in self.campaign_items().items() if item.checkState() == Qt.CheckState.Checked
        ]
        self.draft.set("referral_factory.campaign_ids", chosen)

    def _backfill_edited(self, button: Any, checked: bool) -> None:
        if not checked or self._loading:
            return
        value = button.property("backfill")
        since = self.since.date().toString("yyyy-MM-dd") if value == "since" else None
        self.since.setEnabled(value == "since")
        self.draft.set_many({"referral_factory.backfill": value, "referral_factory.backfill_since": since})

    def _load(self, settings: Any) -> None:
        # the radio buttons' group signals even while a button's own signals are blocked
        self._loading = True
        try:
            self._show_settings(settings.referral_factory)
        finally:
            self._loading = False

    def _show_settings(self, rf: Any) -> None:
        for cid, item in self.campaign_items().items():
            state = Qt.CheckState.Checked if cid in rf.campaign_ids else Qt.CheckState.Unchecked
            if item.checkState() != state:
                self.list.blockSignals(True)
                item.setCheckState(state)
                self.list.blockSignals(False)
        _set_checked(self.invited, rf.sync_invited)
        _set_checked(self.referring, rf.sync_referring)
        button = {"all": self.backfill_all, "since": self.backfill_since}.get(rf.backfill, self.backfill_none)
        _set_checked(button, True)
        self._show_since(rf)

    def _show_since(self, rf: Any) -> None:
        if rf.backfill_since:
            try:
                wanted = QDate(date.fromisoformat(rf.backfill_since))
            except ValueError:
                wanted = self.since.date()
        else:
            wanted = QDate.currentDate().addDays(-30)
        if self.since.date() != wanted:
            self.since.blockSignals(True)
            self.since.setDate(wanted)
            self.since.blockSignals(False)
        self.since.setEnabled(rf.backfill == "since")

    def _show_issues(self, issues: list[Any]) -> None:
        for label in (self.campaigns_issue, self.who_issue, self.since_issue):
            label.show_issues(issues)


class BaseUrlFields(QWidget):
    """The two API addresses (for a proxy, a regional endpoint or the sandbox), validated as typed."""

    def __init__(self, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.draft = draft
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setContentsMargins(0, 0, 0, 0)
        self.edits: dict[str, QLineEdit] = {}
        self.resets: dict[str, QPushButton] = {}
        self.issues: list[IssueLabel] = []
        for path, label, default in (
            ("referral_factory.base_url", "Referral Factory API a&ddress:", DEFAULT_RF_BASE_URL),
            ("pipedrive.base_url", "Pipedrive API addre&ss:", DEFAULT_PD_BASE_URL),
        ):
            edit = QLineEdit()
            edit.setPlaceholderText(default)
            edit.textEdited.connect(lambda text, p=path: self.draft.set(p, text.strip()))
            reset = QPushButton("Reset to default")
            reset.setAccessibleName(f"Reset {label.replace('&', '').rstrip(':')} to default")
            reset.clicked.connect(lambda _checked=False, p=path, d=default: self.draft.set(p, d))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(reset)
            issue = IssueLabel(path)
            cell = QVBoxLayout()
            cell.addLayout(row)
            cell.addWidget(issue)
            form.addRow(buddy_label(label, edit), cell)
            self.edits[path] = edit
            self.resets[path] = reset
            self.issues.append(issue)
        draft.changed.connect(self._load)
        draft.issuesChanged.connect(self._show_issues)
        self._load(draft.settings)
        self._show_issues(draft.issues)

    def _show_issues(self, issues: list[Any]) -> None:
        for label in self.issues:
            label.show_issues(issues)

    def _load(self, _settings: Any) -> None:
        for path, edit in self.edits.items():
            value = self.draft.get(path)
            if edit.text().strip() != value:
                edit.setText(value)


class ConnectionsPage(DraftPage):
    title = "Connections"
    icon_name = "connections"

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.referral_factory = TokenBox(controller, self.draft, REFERRAL_FACTORY)
        self.pipedrive = TokenBox(controller, self.draft, PIPEDRIVE)
        self.campaigns = CampaignPicker(controller, self.draft)
        self.referral_factory.tested.connect(self._referral_factory_tested)
        self.pipedrive.tested.connect(self._pipedrive_tested)
        campaigns_box = QGroupBox("Campaigns")
        QVBoxLayout(campaigns_box).addWidget(self.campaigns)
        self.base_urls = BaseUrlFields(self.draft)
        self.advanced = Fold("&Advanced", self.base_urls)
        intro = hint_label(
            "rf-desktop reads new sign-ups from Referral Factory and creates people and leads or deals in "
            "Pipedrive. Tokens are kept in your system's keychain, never in rf-desktop's files."
        )
        # the sync stopped on a token or an address: said here, where it is fixed
        self.problem = MessagePanel()
        controller.stateChanged.connect(self._show_problem)
        self._show_problem()
        for widget in (self.problem, intro, self.referral_factory, campaigns_box, self.pipedrive, self.advanced):
            self.body.addWidget(widget)
        self.body.addStretch(1)
        # open the fold by itself when an address is wrong, so the message is seen
        self.draft.issuesChanged.connect(self._reveal_url_problems)
        self._reveal_url_problems(self.draft.issues)
        self._shown_once = False

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once and not self.controller.account.cached_campaigns():
            # the campaign names come from Referral Factory: fetch them once, without waiting for a click
            self.tasks.spawn("first-look", self._first_look())
        self._shown_once = True

    async def _first_look(self) -> None:
        try:
            stored = await self.controller.account.token_source(RF_TOKEN)
        except SecretsError:
            return  # the token box already shows the keychain problem
        if stored:
            self.referral_factory.start_test()

    def _show_problem(self, *_state: object) -> None:
        service = self.controller.problem_service
        if service:
            self.problem.show_message(
                ERROR, problem_title(self.controller.state, service), self.controller.state_message
            )
        else:
            self.problem.clear()

    def _tested_ok(self, service: Service) -> None:
        """The token and address just worked: if the sync stopped on them, it tries again now."""
        if self.controller.problem_service == service.label:
            self.controller.recheck()

    def _referral_factory_tested(self, result: CheckResult) -> None:
        if result.ok:
            self.campaigns.set_campaigns(self.controller.account.cached_campaigns())
            self._tested_ok(REFERRAL_FACTORY)

    def _pipedrive_tested(self, result: CheckResult) -> None:
        if result.ok:
            self._tested_ok(PIPEDRIVE)
        if result.ok and self.controller.schema() is None:
            self.tasks.spawn("schema", self._fetch_fields())

    async def _fetch_fields(self) -> None:
        """Fetch the Pipedrive fields for the Mapping page after a successful test. A problem here shows
        on the Mapping page (where the fields are needed), so it is not reported twice."""
        with contextlib.suppress(*PROBLEMS):
            await refresh_schema(self.controller, self.draft)

    def _reveal_url_problems(self, issues: list[Any]) -> None:
        if any(issue.path.endswith(".base_url") for issue in issues):
            self.advanced.set_expanded(True)


def _set_checked(button: QCheckBox | QRadioButton, checked: bool) -> None:
    if button.isChecked() != checked:
        button.blockSignals(True)
        button.setChecked(checked)
        button.blockSignals(False)
