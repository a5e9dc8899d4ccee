"""The mouse wheel scrolls the page; it changes a drop-down, spin box or slider only once that has focus.

Qt's default lets the wheel change any value under the pointer, and even gives the widget focus first
(its focus policy is `WheelFocus`), so rolling down a long settings page silently rewrote its choices,
which then saved themselves. The app's style guards every value widget of every window and dialog as
Qt polishes it (once per widget):

- its `WheelFocus` policy becomes `StrongFocus` (a click or Tab still focuses it; the wheel no longer does);
- the guard filters its events: a wheel event while it has no focus goes to the scroll area around it
  instead, so the page scrolls as if the pointer were over empty space (and nothing happens where nothing
  scrolls).

Scroll bars are sliders too, and keep the wheel. (A filter on the whole application would see the same
wheel events, but it would also run Python for every event of every object, thousands a second while
the sync runs, and the window would pay for it in every paint.)
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QProxyStyle,
    QScrollBar,
    QWidget,
)

VALUE_WIDGETS = (QComboBox, QAbstractSpinBox, QAbstractSlider)


def is_guarded(widget: QObject) -> bool:
    """A widget whose value the wheel would change."""
    return isinstance(widget, VALUE_WIDGETS) and not isinstance(widget, QScrollBar)


class WheelGuard(QObject):
    """The event filter of every guarded widget."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            assert isinstance(event, QWheelEvent)
            scroll_page(watched, event)
            event.accept()
            return True
        return False


class GuardingStyle(QProxyStyle):
    """The app's style (`base`, e.g. "fusion"), which hands each value widget to the guard as Qt polishes it."""

    def __init__(self, base: str, guard: WheelGuard) -> None:
        super().__init__(base)
        self.guard = guard

    # Qt's polish(QWidget), polish(QPalette) and polish(QApplication) are one method in Python
    def polish(self, target: Any) -> None:
        super().polish(target)
        if isinstance(target, QWidget) and is_guarded(target):
            if target.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                target.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            target.removeEventFilter(self.guard)  # a widget polished again is filtered once
            target.installEventFilter(self.guard)


def scroll_area_around(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


def scroll_page(widget: QWidget, event: QWheelEvent) -> None:
    """Hand the wheel to the nearest scroll area holding `widget`. (Qt passes an ignored wheel event on to
    the parents only when it came from the mouse itself; sending it on works for every event alike.)"""
    area = scroll_area_around(widget)
    if area is None:
        return
    viewport = area.viewport()
    moved = QWheelEvent(
        viewport.mapFromGlobal(event.globalPosition()),
        event.globalPosition(),
        event.pixelDelta(),
        event.angleDelta(),
        event.buttons(),
        event.modifiers(),
        event.phase(),
        event.inverted(),
        event.source(),
    )
    QApplication.sendEvent(viewport, moved)


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Guard every widget of `app` from now on, keeping its style (once; later calls return the same guard)."""
    existing = app.findChild(WheelGuard)
    if isinstance(existing, WheelGuard):
        return existing
    guard = WheelGuard(app)
    app.setStyle(GuardingStyle(app.style().name(), guard))
    return guard
