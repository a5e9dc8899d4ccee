"""The selected referral's whole story under the Invited users table: where it stands and why, what to
do next, its records in Pipedrive, and its timeline from the sync log, with Retry at hand."""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core.store import FAILED, SKIPPED, LogRow, Referral
from rf_desktop.core.vocabulary import describe
from rf_desktop.gui import icons
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.formatting import exact_time, short_time
from rf_desktop.gui.models.status_icons import level_icon, standing_colour

RETRYABLE = frozenset({FAILED, SKIPPED})
LINES_TALL = 10  # the pane's natural height, in lines of text: the table keeps most of the page
RECORD_KINDS = (("person", "Person"), ("lead", "Lead"), ("deal", "Deal"))
TIMELINE_ROWS = 200
NOTHING_SELECTED = "Select a referral to see where it stands, its records in Pipedrive and its timeline."


def can_retry(referral: Referral) -> bool:
    """Failed and skipped referrals can be sent again; a test referral belongs to its test."""
    return referral.status in RETRYABLE and not referral.is_test


class ReferralDetails(QFrame):
    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.referral: Referral | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Referral details")

        self.heading = QLabel()
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state = QLabel()
        self.reason = QLabel()
        self.next_step = QLabel()
        self.links = QLabel()
        self.links.setTextFormat(Qt.TextFormat.RichText)
        self.links.linkActivated.connect(self._open_link)
        for label in (self.heading, self.state, self.reason, self.next_step, self.links):
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.retry_button = QPushButton(icons.icon("retry"), "Retry")
        self.retry_button.setToolTip("Send this referral again")
        self.retry_button.clicked.connect(self.retry)
        self.timeline = QListWidget()
        self.timeline.setAccessibleName("Timeline")
        self.timeline.setAlternatingRowColors(True)
        self.timeline.setWordWrap(True)

        about = QVBoxLayout()
        about.addWidget(self.heading)
        about.addWidget(self.state)
        about.addWidget(self.reason)
        about.addWidget(self.next_step)
        about.addWidget(self.links)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        about.addLayout(buttons)
        about.addStretch(1)
        story = QVBoxLayout()
        story.addWidget(QLabel("Timeline"))
        story.addWidget(self.timeline, 1)
        row = QHBoxLayout(self)
        row.addLayout(about, 2)
        row.addLayout(story, 3)

        controller.referralsChanged.connect(self._on_referrals_changed)
        controller.logAdded.connect(self._on_log_added)
        self.show_referral(None)

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.fontMetrics().lineSpacing() * LINES_TALL)

    # --- what the page tells it -----------------------------------------------------------------------

    def show_referral(self, referral: Referral | None) -> None:
        self.referral = referral
        if referral is None:
            self.heading.setText(NOTHING_SELECTED)
            for label in (self.state, self.reason, self.next_step, self.links):
                label.clear()
                label.hide()
            self.retry_button.setEnabled(False)
            self.timeline.clear()
            return
        described = describe(referral)
        name = referral.first_name or referral.email or f"Referral {referral.rf_user_id}"
        email = f" · {referral.email}" if referral.email and referral.email != name else ""
        self.heading.setText(f"<b>{html.escape(name)}</b>{html.escape(email)}")
        colour = standing_colour(described.standing).name()
        self.state.setText(
            f"<b style='color:{colour}'>{html.escape(described.word)}</b>: "
            f"{html.escape(described.standing.meaning)}"
        )
        self.reason.setText(f"Why: {described.reason}")
        self.next_step.setText(f"What to do next: {described.next_step}")
        self.links.setText(self._links_html(referral, described.records_exist))
        for label in (self.state, self.reason, self.next_step, self.links):
            label.setVisible(bool(label.text()))
        self.retry_button.setEnabled(can_retry(referral))
        self._fill_timeline(referral.rf_user_id)

    def retry(self) -> bool:
        if self.referral is None or not can_retry(self.referral):
            return False
        self.controller.retry(self.referral.rf_user_id)
        return True

    # --- pieces -----------------------------------------------------------------------------------------

    @staticmethod
    def _links_html(referral: Referral, records_exist: bool) -> str:
        present = [(kind, label, getattr(referral, f"{kind}_id")) for kind, label in RECORD_KINDS]
        present = [(kind, label, record) for kind, label, record in present if record not in (None, "")]
        if not present:
            return ""
        if not records_exist:
            return "In Pipedrive: nothing left (the test's clean-up removed its records)."
        links = " · ".join(
            f"<a href='{kind}:{html.escape(str(record))}'>{label} {html.escape(str(record))}</a>"
            for kind, label, record in present
        )
        return f"Open in Pipedrive: {links}"

    def _open_link(self, link: str) -> None:
        kind, _, record = link.partition(":")
        self.controller.open_in_pipedrive(kind, int(record) if record.isdigit() else record)

    def _fill_timeline(self, rf_user_id: int) -> None:
        rows = self.controller.store.log_rows(rf_user_id=rf_user_id, limit=TIMELINE_ROWS)
        self.timeline.clear()
        for row in reversed(rows):  # oldest first: a story reads forwards
            self.timeline.addItem(_timeline_item(row))
        self.timeline.scrollToBottom()

    # --- live -------------------------------------------------------------------------------------------

    def _on_referrals_changed(self, rf_user_ids: frozenset[int]) -> None:
        if self.referral is not None and self.referral.rf_user_id in rf_user_ids and not self.controller.closed:
            self.show_referral(self.controller.store.get(self.referral.rf_user_id))

    def _on_log_added(self, row: LogRow) -> None:
        if self.referral is not None and row.rf_user_id == self.referral.rf_user_id:
            self.timeline.addItem(_timeline_item(row))
            self.timeline.scrollToBottom()


def _timeline_item(row: LogRow) -> QListWidgetItem:
    what = row.action[:1].upper() + row.action[1:]
    item = QListWidgetItem(level_icon(row.level), f"{short_time(row.time, seconds=True)}  {what}: {row.message}")
    item.setToolTip(exact_time(row.time))
    return item
