"""The status bar: what the sync is doing, when it next looks for new sign-ups and for conversions,
today's Pipedrive tokens, and the counts.

The wording lives here (`state_label`, `budget_text`, `counts_text`, `timing_text`) so the tray says exactly
what the status bar says.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from rf_desktop.core.config import Settings
from rf_desktop.core.events import BudgetChanged
from rf_desktop.core.vocabulary import counts_sentence
from rf_desktop.gui import theme
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.widgets.status_pill import StatusPill

STATE_LABELS = {
    "idle": "Running",
    "running": "Syncing…",
    "paused": "Paused",
    "error": "Error",
    "auth_error": "Token rejected",
    "budget_exhausted": "Budget used up",
    "not_configured": "Not set up",
    "stopped": "Stopped",
}
NOTICE_MS = 10_000
LOOKS_EXPLAINED = (
    "New sign-ups are read from Referral Factory every few seconds, without spending Pipedrive tokens. "
    "Conversions are read from Pipedrive at the pace the Rules page allows for the daily budget. "
    "Sync now (F5) looks for both at once."
)


def state_label(state: str, service: str = "") -> str:
    """The state in a word or two; when a service's token or address is at fault, which service."""
    if service:
        return problem_title(state, service)
    return STATE_LABELS.get(state, state.replace("_", " ").capitalize())


def problem_title(state: str, service: str) -> str:
    """A token or address problem, naming the service: "Pipedrive rejected the token"."""
    if state == "auth_error":
        return f"{service} rejected the token"
    return f"Cannot reach {service}"


def budget_text(budget: BudgetChanged | None) -> str:
    """ "Pipedrive tokens today: 1,240 / 60,000 (2%)"; the owner's cap counts when it is the lower limit."""
    if budget is None:
        return "Pipedrive tokens today: not known yet"
    limits = [limit for limit in (budget.daily_budget, budget.cap) if limit]
    if not limits:
        return f"Pipedrive tokens today: {budget.used_today:,}"
    limit = min(limits)
    share = round(100 * budget.used_today / limit)
    return f"Pipedrive tokens today: {budget.used_today:,} / {limit:,} ({share}%)"


def budget_tooltip(budget: BudgetChanged | None) -> str:
    if budget is None:
        return "Pipedrive's daily API budget: shown after the first sync."
    lines = ["Pipedrive API tokens used today by your whole Pipedrive account's integrations."]
    if budget.daily_budget:
        lines.append(f"Pipedrive's daily budget: {budget.daily_budget:,} tokens.")
    if budget.cap:
        lines.append(f"rf-desktop's own cap (Rules page): {budget.cap:,} tokens.")
    if budget.resets_at:
        lines.append(f"Resets at {budget.resets_at.astimezone():%H:%M}.")
    return "\n".join(lines)


def counts_text(counts: Mapping[str, int]) -> str:
    """Referrals per state (`controller.standing_counts()`), in the words of the table and its filter."""
    return counts_sentence(counts)


def _when(moment: datetime, now: datetime) -> str:
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return "now"
    if seconds < 120:
        return f"in {seconds} s"
    if seconds < 7200:
        return f"in {seconds // 60} min"
    return f"at {moment.astimezone():%H:%M}"


def next_check_text(state: str, next_poll_at: datetime | None, now: datetime | None = None) -> str:
    """When the sync tries again (after a problem, or when it is not known what the next cycle is for)."""
    if state == "running":
        return "Checking now…"
    if next_poll_at is None or state in ("paused", "stopped", "not_configured"):
        return ""
    when = _when(next_poll_at, now or datetime.now(UTC))
    return "Checking soon…" if when == "now" else f"Next check {when}"


def next_looks_text(
    signups_at: datetime, conversions_at: datetime | None, share: float, now: datetime | None = None
) -> str:
    """ "Next look for new sign-ups in 2 s · for conversions in 4 min (keeps within 10% of your Pipedrive
    budget)": conversions only while some referral waits for one, with why that look comes so seldom
    (`share`: the part of the daily budget the owner lets the conversion watch use, on the Rules page)."""
    now = now or datetime.now(UTC)
    text = f"Next look for new sign-ups {_when(signups_at, now)}"
    if conversions_at is not None:
        text += f" · for conversions {_when(conversions_at, now)} (keeps within {share:.0%} of your Pipedrive budget)"
    return text


def timing_text(controller: AppController, share: float) -> str:
    """When the sync next looks for sign-ups and conversions while it runs; else when it tries again."""
    signups_at = controller.next_signups_at
    if controller.state == "idle" and signups_at is not None:
        return next_looks_text(signups_at, controller.next_conversions_at, share)
    return next_check_text(controller.state, controller.next_poll_at)


def watch_share(settings: Settings) -> float:
    """The part of Pipedrive's daily budget the conversion watch may use (kept by the status bar and the
    tray, which would otherwise read the settings every second)."""
    return settings.sync.watch_token_share


class ElidingLabel(QLabel):
    """A status bar text that gives up width rather than widen the window past a laptop's screen: cut
    short with "…" when the window is narrow (its tooltip says the whole)."""

    SHORTEST_CHARACTERS = 12

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        shortest = self.fontMetrics().averageCharWidth() * self.SHORTEST_CHARACTERS
        return QSize(min(hint.width(), shortest), hint.height())

    def paintEvent(self, _event: QPaintEvent) -> None:
        area = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, area.width())
        QPainter(self).drawText(area, int(self.alignment()), text)


class SyncStatusBar(QStatusBar):
    """Fed by the controller's signals, its counts included (`countsChanged`)."""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.share = watch_share(controller.settings())
        self.pill = StatusPill()
        self.next_check = ElidingLabel()
        self.notice = ElidingLabel()
        self.budget = QLabel()
        self.counts = QLabel()
        for label in (self.next_check, self.notice, self.budget, self.counts):
            label.setContentsMargins(8, 0, 8, 0)
        self.addWidget(self.pill)
        self.addWidget(self.next_check)
        self.addWidget(self.notice, 1)
        self.addPermanentWidget(self.counts)
        self.addPermanentWidget(self.budget)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._show_next_check)
        self._ticker.start()
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice.clear)
        controller.stateChanged.connect(self._on_state)
        controller.budgetChanged.connect(self._on_budget)
        controller.settingsChanged.connect(self._on_settings)
        controller.countsChanged.connect(self.refresh_counts)
        controller.closing.connect(self._stop)
        self._on_state(controller.state, controller.state_message)
        self._on_budget(controller.budget)
        self.refresh_counts()

    def show_notice(self, text: str, ms: int = NOTICE_MS) -> None:
        """A passing message (a notification where there is no tray) that leaves the sync state in view,
        unlike QStatusBar.showMessage, which hides it."""
        self.notice.setText(text)
        self.notice.setToolTip(text)
        self._notice_timer.start(ms)

    def refresh_counts(self) -> None:
        if not self.controller.closed:
            self.counts.setText(counts_text(self.controller.standing_counts()))

    def _on_state(self, _state: str, _message: str) -> None:
        self._show_state()
        self._show_next_check()

    def _show_state(self) -> None:
        state = self.controller.state
        self.pill.set_status(state_label(state, self.controller.problem_service), theme.state_colour(state))
        self.pill.setToolTip(self.controller.state_message)

    def _on_budget(self, budget: BudgetChanged | None) -> None:
        self.budget.setText(budget_text(budget))
        self.budget.setToolTip(budget_tooltip(budget))

    def _on_settings(self, settings: Settings) -> None:
        self.share = watch_share(settings)
        self._show_next_check()

    def _show_next_check(self) -> None:
        text = timing_text(self.controller, self.share)
        self.next_check.setText(text)
        self.next_check.setToolTip(f"{text}\n\n{LOOKS_EXPLAINED}" if text else LOOKS_EXPLAINED)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._show_state()  # the state's colour has a light and a dark tone
        super().changeEvent(event)

    def _stop(self) -> None:
        self._ticker.stop()
        self._notice_timer.stop()
