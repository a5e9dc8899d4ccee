"""Light and dark palettes that follow the operating system, and the colours that carry meaning
(a referral's state, the sync state), chosen to read well on both."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory


@dataclass(frozen=True)
class Tone:
    """One meaning, in the colour used on a light and on a dark background."""

    light: str
    dark: str

    def colour(self, dark: bool | None = None) -> QColor:
        return QColor(self.dark if (is_dark() if dark is None else dark) else self.light)


GOOD = Tone("#1e7b34", "#5cd17a")
BUSY = Tone("#1f5fbf", "#7fb0ff")
WARN = Tone("#a35a00", "#ffb74d")
BAD = Tone("#c62828", "#ff7b72")
QUIET = Tone("#5f6b7a", "#a0a9b5")

STATE_TONES = {
    "idle": GOOD,
    "running": GOOD,
    "paused": QUIET,
    "error": BAD,
    "auth_error": BAD,
    "budget_exhausted": WARN,
    "not_configured": QUIET,
    "stopped": QUIET,
}


def state_colour(state: str) -> QColor:
    return STATE_TONES.get(state, QUIET).colour()


def is_dark() -> bool:
    """True when the app is showing the dark palette (or the OS asks for it before one is applied)."""
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return False
    window = app.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def system_prefers_dark() -> bool:
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return False
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202328",
        QPalette.ColorRole.WindowText: "#e6e8eb",
        QPalette.ColorRole.Base: "#17191d",
        QPalette.ColorRole.AlternateBase: "#1d2025",
        QPalette.ColorRole.ToolTipBase: "#2b2f36",
        QPalette.ColorRole.ToolTipText: "#e6e8eb",
        QPalette.ColorRole.PlaceholderText: "#8b939e",
        QPalette.ColorRole.Text: "#e6e8eb",
        QPalette.ColorRole.Button: "#2a2e35",
        QPalette.ColorRole.ButtonText: "#e6e8eb",
        QPalette.ColorRole.BrightText: "#ff7b72",
        QPalette.ColorRole.Light: "#3a3f47",
        QPalette.ColorRole.Midlight: "#30353c",
        QPalette.ColorRole.Mid: "#25292f",
        QPalette.ColorRole.Dark: "#111315",
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Highlight: "#2f6fed",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#7fb0ff",
        QPalette.ColorRole.LinkVisited: "#b19cff",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    disabled = QColor("#6c737d")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor("#3a3f47"))
    return palette


def light_palette() -> QPalette:
    palette = QStyleFactory.create("Fusion").standardPalette()
    palette.setColor(QPalette.ColorRole.Highlight, QColor("#2f6fed"))
    palette.setColor(QPalette.ColorRole.Link, QColor("#1f5fbf"))
    return palette


def apply(app: QApplication) -> None:
    """The palette the OS asks for; called again when the OS colour scheme changes."""
    app.setPalette(dark_palette() if system_prefers_dark() else light_palette())


def follow_system(app: QApplication) -> None:
    """Fusion, with the palette the OS asks for now and whenever it switches between light and dark."""
    app.setStyle("Fusion")
    apply(app)
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply(app))
