"""The tray icon: the sync state at a glance, a small menu, and notifications when referrals qualify or fail.

Some desktops (and the offscreen platform the tests use) have no system tray. Then there is no icon, the
window's close button quits, and notifications show in the window's status bar instead (`fallbackMessage`).
Notifications arriving in a burst are gathered into one ("3 referrals qualified: Ann, Bob and Carla").
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from rf_desktop.core.config import Settings
from rf_desktop.core.events import ReferralFailed, ReferralQualified
from rf_desktop.gui import icons
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.widgets.sync_status import counts_text, state_label, timing_text, watch_share

TRAY_ICONS = {
    "idle": "tray-running",
    "running": "tray-running",
    "paused": "tray-paused",
    "stopped": "tray-paused",
    "error": "tray-error",
    "auth_error": "tray-error",
    "budget_exhausted": "tray-budget",
    "not_configured": "tray-setup",
}
GATHER_MS = 1500
TIMING_TICK_MS = 1000  # the tooltip's countdown to the next looks, like the status bar's
NOTIFY_MS = 8000
NAMES_SHOWN = 3


def tray_icon_name(state: str) -> str:
    return TRAY_ICONS.get(state, "tray-setup")


def tray_tooltip(state: str, message: str, counts: Mapping[str, int], service: str = "", timing: str = "") -> str:
    """`service`: the one whose token or address stopped the sync, if any; `timing`: the status bar's
    `timing_text` (when the sync next looks)."""
    lines = [f"rf-desktop: {state_label(state, service)}", *([timing] if timing else []), counts_text(counts)]
    if message and state not in ("idle", "running"):
        lines.append(message)
    return "\n".join(lines)


def names_sentence(names: list[str]) -> str:
    """ "Ann", "Ann and Bob", "Ann, Bob, Carla and 2 more"."""
    if len(names) <= NAMES_SHOWN:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:NAMES_SHOWN]) + f" and {len(names) - NAMES_SHOWN} more"


class Tray(QObject):
    """`actions` are the window's own (show, pause/resume, sync now, send test referral, quit), so the
    tray menu and the window always agree."""

    fallbackMessage = Signal(str)
    showWindowRequested = Signal()

    def __init__(self, controller: AppController, actions: list[QAction | None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.icon: QSystemTrayIcon | None = None
        self.menu: QMenu | None = None
        self._qualified: list[str] = []
        self._failed: list[tuple[str, str]] = []
        self._gather = QTimer(self)
        self._gather.setSingleShot(True)
        self._gather.setInterval(GATHER_MS)
        self._gather.timeout.connect(self._notify_gathered)
        self._timing_ticker = QTimer(self)
        self._timing_ticker.setInterval(TIMING_TICK_MS)
        self._timing_ticker.timeout.connect(self._show_tooltip)
        self._share = watch_share(controller.settings())
        self._counts: Mapping[str, int] = {}
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._create_icon(actions)
        controller.stateChanged.connect(self.update_state)
        controller.countsChanged.connect(self.update_state)
        controller.settingsChanged.connect(self._on_settings)
        controller.referralQualified.connect(self._on_qualified)
        controller.referralFailed.connect(self._on_failed)
        controller.closing.connect(self._stop_timers)
        self.update_state()

    @property
    def available(self) -> bool:
        return self.icon is not None

    def _create_icon(self, actions: list[QAction | None]) -> None:
        self.menu = QMenu()
        for action in actions:
            if action is None:
                self.menu.addSeparator()
            else:
                self.menu.addAction(action)
        self.icon = QSystemTrayIcon(self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self.icon.messageClicked.connect(self.showWindowRequested)
        self._timing_ticker.start()

    def show(self) -> None:
        if self.icon is not None:
            self.icon.show()

    def hide(self) -> None:
        if self.icon is not None:
            self.icon.hide()

    def update_state(self, *_args: object) -> None:
        if self.icon is None or self.controller.closed:
            return
        self.icon.setIcon(icons.icon(tray_icon_name(self.controller.state)))
        self._counts = self.controller.standing_counts()
        self._show_tooltip()

    def _show_tooltip(self) -> None:
        """Counted at state and referral changes only; the countdown ticks with the counts it has."""
        if self.icon is None or self.controller.closed:
            return
        controller = self.controller
        self.icon.setToolTip(
            tray_tooltip(
                controller.state,
                controller.state_message,
                self._counts,
                controller.problem_service,
                timing_text(controller, self._share),
            )
        )

    def _on_settings(self, settings: Settings) -> None:
        self._share = watch_share(settings)
        self._show_tooltip()

    def _stop_timers(self) -> None:
        self._gather.stop()
        self._timing_ticker.stop()

    def notify(self, title: str, message: str, warning: bool = False) -> None:
        """A desktop notification, or a status bar message where there is no tray."""
        if self.icon is not None and QSystemTrayIcon.supportsMessages():
            kind = QSystemTrayIcon.MessageIcon.Warning if warning else QSystemTrayIcon.MessageIcon.Information
            self.icon.showMessage(title, message, kind, NOTIFY_MS)
        else:
            self.fallbackMessage.emit(f"{title}: {message}")

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.showWindowRequested.emit()

    def _on_qualified(self, event: ReferralQualified) -> None:
        if not self.controller.closed and self.controller.settings().sync.notify_qualified:
            self._qualified.append(event.name)
            self._gather_soon()

    def _on_failed(self, event: ReferralFailed) -> None:
        if not self.controller.closed and self.controller.settings().sync.notify_failed:
            self._failed.append((event.name, event.reason))
            self._gather_soon()

    def _gather_soon(self) -> None:
        if not self._gather.isActive():
            self._gather.start()

    def _notify_gathered(self) -> None:
        qualified, failed = self._qualified, self._failed
        self._qualified, self._failed = [], []
        if qualified:
            if len(qualified) == 1:
                message = f"{qualified[0]} converted and was qualified in Referral Factory."
                self.notify("Referral qualified", message)
            else:
                self.notify(f"{len(qualified)} referrals qualified", names_sentence(qualified) + ".")
        if failed:
            if len(failed) == 1:
                name, reason = failed[0]
                self.notify(f"Could not send {name}", reason, warning=True)
            else:
                names = names_sentence([name for name, _reason in failed])
                self.notify(f"{len(failed)} referrals failed", f"{names}. See the Invited users page.", warning=True)
