"""Small widgets the settings pages share: inline message panels, per-field validation messages,
a busy indicator, a foldable "Advanced" section and mnemonic-aware labels.

They use Qt's standard icons (not the app's icon set) so they look native on every platform and work
before the app's resources are loaded (the first-run dialog, tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QProgressBar,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core.config import Issue
from rf_desktop.gui import theme

SUCCESS = "success"
ERROR = "error"
WARNING = "warning"
INFO = "info"

_ICONS = {
    SUCCESS: QStyle.StandardPixmap.SP_DialogApplyButton,
    ERROR: QStyle.StandardPixmap.SP_MessageBoxCritical,
    WARNING: QStyle.StandardPixmap.SP_MessageBoxWarning,
    INFO: QStyle.StandardPixmap.SP_MessageBoxInformation,
}

_TONES = {SUCCESS: theme.GOOD, ERROR: theme.BAD, WARNING: theme.WARN, INFO: theme.BUSY}


def _panel_style(kind: str) -> str:
    """A tinted background with a coloured edge; the text keeps the palette's colour, so it reads in
    light and dark themes."""
    colour = _TONES[kind].colour()
    r, g, b = colour.red(), colour.green(), colour.blue()
    return (
        f"QFrame#messagePanel {{ border: 1px solid rgb({r}, {g}, {b}); border-radius: 4px;"
        f" background: rgba({r}, {g}, {b}, 28); }}"
    )


def issue_colour(severity: str) -> str:
    return (theme.BAD if severity == ERROR else theme.WARN).colour().name()


def wrapped_label(text: str = "", *, rich: bool = False) -> QLabel:
    """A label that wraps instead of clipping when the window is narrow or the scale is large."""
    return _wrapping(QLabel(text), rich)


def _wrapping(label: QLabel, rich: bool = False) -> QLabel:
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


class HintLabel(QLabel):
    """A secondary explanation under a control, in the palette's placeholder colour, slightly smaller.

    It takes the colour again whenever the palette changes: kept from the light palette, a hint would be
    nearly unreadable once the desktop switches to dark while the app runs."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        _wrapping(self)
        font = self.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.92, 7.0))
        self.setFont(font)
        self._take_placeholder_colour()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._take_placeholder_colour()
        super().changeEvent(event)

    def _take_placeholder_colour(self) -> None:
        palette = self.palette()
        placeholder = palette.color(QPalette.ColorRole.PlaceholderText)  # not set here, so still inherited
        # the disabled colour stays the palette's own, so a disabled option's explanation greys out
        groups = (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive)
        if all(palette.color(group, QPalette.ColorRole.WindowText) == placeholder for group in groups):
            return  # already right; setting it again would announce another palette change
        for group in groups:
            palette.setColor(group, QPalette.ColorRole.WindowText, placeholder)
        self.setPalette(palette)


def hint_label(text: str) -> QLabel:
    """A secondary explanation under a control (`HintLabel`)."""
    return HintLabel(text)


def add_to(layout: QBoxLayout, item: QWidget | QLayout) -> None:
    """Add a widget or a nested layout."""
    if isinstance(item, QWidget):
        layout.addWidget(item)
    else:
        layout.addLayout(item)


def buddy_label(text: str, buddy: QWidget) -> QLabel:
    """A label with a mnemonic (`&`) that moves the focus to `buddy`."""
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


class MessagePanel(QFrame):
    """An inline panel with an icon, a bold headline and details (what happened and what to do).

    Hidden while empty, so a page can keep one under each action without reserving space."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messagePanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._icon = QLabel()
        self._icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._title = wrapped_label()
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self._detail = wrapped_label()
        self._detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self._title)
        text.addWidget(self._detail)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        row.addWidget(self._icon)
        row.addLayout(text, 1)
        self.kind = ""
        self.hide()

    @property
    def title(self) -> str:
        return self._title.text()

    @property
    def detail(self) -> str:
        return self._detail.text()

    def show_message(self, kind: str, title: str, detail: str = "") -> None:
        self.kind = kind
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self._icon.setPixmap(self.style().standardIcon(_ICONS[kind]).pixmap(size, size))
        self._title.setText(title)
        self._detail.setText(detail)
        self._detail.setVisible(bool(detail))
        self.setAccessibleName(f"{kind}: {title}")
        self.setAccessibleDescription(detail)
        self.setStyleSheet(_panel_style(kind))
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self._title.clear()
        self._detail.clear()
        self.hide()


class IssueLabel(QLabel):
    """The validation message next to one field: the issues whose path starts with one of `paths`."""

    def __init__(self, *paths: str, exact: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.exact = exact
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.hide()

    def matches(self, issue: Issue) -> bool:
        if self.exact:
            return issue.path in self.paths
        return any(issue.path == p or issue.path.startswith((p + ".", p + "[")) for p in self.paths)

    def show_issues(self, issues: Iterable[Issue]) -> list[Issue]:
        """Show the matching issues (errors first); return them so the caller knows what was shown."""
        mine = sorted((i for i in issues if self.matches(i)), key=lambda i: i.severity != ERROR)
        if not mine:
            self.clear()
            self.hide()
            return []
        self.setStyleSheet(f"color: {issue_colour(mine[0].severity)};")
        self.setText("\n".join(dict.fromkeys(i.message for i in mine)))
        self.show()
        return mine


class BusyIndicator(QWidget):
    """An indeterminate progress bar with a short text ("Testing…"), hidden while idle."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bar = QProgressBar()
        self._bar.setRange(0, 0)
        self._bar.setTextVisible(False)
        self._bar.setMaximumWidth(120)
        self._bar.setMaximumHeight(self.fontMetrics().height())
        self._label = QLabel(text)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._bar)
        row.addWidget(self._label)
        row.addStretch(1)
        self.hide()

    @property
    def text(self) -> str:
        return self._label.text()

    def start(self, text: str | None = None) -> None:
        if text is not None:
            self._label.setText(text)
        self.show()

    def stop(self) -> None:
        self.hide()

    def set_busy(self, busy: bool) -> None:
        if busy:
            self.start()
        else:
            self.stop()


class Fold(QWidget):
    """A section whose content shows when its header is clicked ("Advanced"); collapsed by default."""

    def __init__(self, title: str, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setAutoRaise(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.RightArrow)
        self.header.toggled.connect(self.set_expanded)
        self.content = content
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.header, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(content)
        content.hide()

    @property
    def expanded(self) -> bool:
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # re-enters through `toggled`
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.content.setVisible(expanded)


class SaveStatus(QLabel):
    """ "All changes saved" / "Saving…" / "Not saved: …": the page's answer to "did it keep my edit?"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.state = ""

    def set_state(self, state: str, message: str) -> None:
        self.state = state
        self.setText(message)
        self.setStyleSheet(f"color: {issue_colour(ERROR)};" if state == ERROR else "")


# --- combo boxes whose items carry data -------------------------------------------------------------------


def set_combo_items(combo: QComboBox, items: Iterable[tuple[str, Any]], selected: Any) -> None:
    """Replace the items (text, data) without emitting change signals, then select `selected`."""
    combo.blockSignals(True)
    combo.clear()
    for text, data in items:
        combo.addItem(text, data)
    combo.setCurrentIndex(combo_index(combo, selected))
    combo.blockSignals(False)


def combo_index(combo: QComboBox, data: Any) -> int:
    """The index of the item carrying `data` (compared with ==, so None and ints work), or -1."""
    return next((i for i in range(combo.count()) if combo.itemData(i) == data), -1)


def select_data(combo: QComboBox, data: Any) -> None:
    """Select the item carrying `data` without emitting change signals."""
    index = combo_index(combo, data)
    if combo.currentIndex() != index:
        combo.blockSignals(True)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)
